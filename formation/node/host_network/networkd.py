"""The underlay setting as a systemd-networkd file. The appliance runs systemd-networkd with a
catch-all DHCP file (`80-formation-dhcp.network`); networkd applies the first file, in lexical
order, that matches a link, so `10-formation-underlay.network` takes the chosen interface over
and every other interface keeps DHCP. Writing is atomic (a half-written file would leave the
host unreachable at the next boot); networkd is then asked to reload, or, where it does not
run, the file applies at the next boot."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from pathlib import Path

from formation.config.settings import Underlay, UnderlaySettings
from formation.fileutil import write_text_atomically
from formation.node.proc import run_command

FILE_NAME = "10-formation-underlay.network"
RELOAD_TIMEOUT_S = 10.0
SYSTEM_BUS = "/run/dbus/system_bus_socket"  # networkctl reload needs D-Bus


def render(underlay: Underlay) -> str | None:
    """The file's text, or None when no interface is chosen (no file: the image's default)."""
    if underlay.interface is None:
        return None
    lines = ["# Written by formation from its `underlay` setting; edit that, not this file.",
             "[Match]", f"Name={underlay.interface}", "", "[Network]"]
    if underlay.mode == "dhcp":
        lines.append("DHCP=yes")
    else:
        lines.append(f"Address={underlay.address}")
        if underlay.gateway:
            lines.append(f"Gateway={underlay.gateway}")
    lines += [f"DNS={server}" for server in underlay.dns]
    lines.append("LinkLocalAddressing=yes")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Applied:
    """What applying the setting did, in words for the operator."""

    path: Path
    changed: bool
    detail: str


def write(underlay: UnderlaySettings) -> tuple[Path, bool]:
    """Writes (or removes) the file; returns its path and whether anything changed.
    Blocking: call in a thread."""
    path = underlay.networkd_dir / FILE_NAME
    text = render(underlay)
    if text is None:
        if not path.exists():
            return path, False
        path.unlink()
        return path, True
    if path.exists() and path.read_text() == text:
        return path, False
    write_text_atomically(path, text, 0o644)
    return path, True


async def networkd_running() -> bool:
    systemctl = shutil.which("systemctl")
    if systemctl is None or not Path("/run/systemd/system").is_dir():
        return False  # not booted with systemd (a container, a laptop without it)
    try:
        done = await run_command([systemctl, "is-active", "--quiet", "systemd-networkd"], 5.0)
    except (OSError, TimeoutError):
        return False
    return done.returncode == 0


async def reload() -> str:
    """Asks networkd to re-read its files; says in words what happened. `networkctl reload`
    goes through D-Bus, which the appliance does not ship (nothing else needs it): there,
    systemd restarts networkd instead (PID 1 answers root on its private socket), which re-reads
    the files just the same; DHCP addresses stay (KeepConfiguration= in the image's file)."""
    networkctl = shutil.which("networkctl")
    if networkctl is None or not await networkd_running():
        return "systemd-networkd does not run here: it applies at the next boot"
    if Path(SYSTEM_BUS).exists():
        why = await _run_for_reason([networkctl, "reload"])
        if why is None:
            return "systemd-networkd reloaded: applied now"
        return f"networkctl reload failed ({why}): it applies at the next boot"
    why = await _run_for_reason([shutil.which("systemctl") or "systemctl", "try-restart",
                                 "systemd-networkd.service"])
    if why is None:
        return "systemd-networkd restarted (no D-Bus here for a reload): applied now"
    return f"restarting systemd-networkd failed ({why}): it applies at the next boot"


async def _run_for_reason(args: list[str]) -> str | None:
    """None when the command succeeded, else why it did not, in words."""
    try:
        done = await run_command(args, RELOAD_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        return repr(exc)
    if done.returncode != 0:
        return done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
    return None


async def apply(underlay: UnderlaySettings) -> Applied:
    """Writes the file off the event loop, and reloads networkd only when it changed."""
    path, changed = await asyncio.to_thread(write, underlay)
    if not changed:
        return Applied(path, False, f"{path} already says this")
    what = "removed" if underlay.interface is None else "written"
    return Applied(path, True, f"{path} {what}; {await reload()}")
