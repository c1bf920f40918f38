"""Where a build step runs: a child in its own mount, PID, UTS and IPC namespaces
(util-linux `unshare`), which mounts the step's overlayfs view of the image and /proc, /sys,
/dev and a tmpfs /run inside it, then chroots into the view.

Why namespaces rather than mounting on the host and unmounting afterwards: every mount a step
makes lives only in its private mount namespace, which the kernel tears down when the step's
last process exits, however it exits (a failing command, a cancelled build, SIGKILL, a crashed
node). So no build can leave a mount behind, and no loop device is ever used (the disk image
is written by mkfs.ext4 -d into a plain file). The PID namespace ends any daemon a RUN or a
package's maintainer script started: when the step's first process exits, all go.

This is not a security boundary: RUN runs as root in a chroot with the host's network, as
`docker build` does. A builder builds Formfiles its operator trusts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

NAMESPACES = ["unshare", "--mount", "--pid", "--fork", "--uts", "--ipc",
              "--propagation", "private", "--"]
OVERLAY_OPTS = "redirect_dir=off,index=off,metacopy=off,xino=off"
# Every layer is an independent directory tree: no redirects or metacopy entries that would
# tie an upper layer to the exact lower layers it was made on, so layers can be stacked again.

PRELUDE = r"""
cd "$FM_CACHE"
if [ -n "$FM_UPPER" ]; then
  mount -t overlay overlay \
    -o "lowerdir=$FM_LOWER,upperdir=$FM_UPPER,workdir=$FM_WORK,$FM_OVERLAY_OPTS" "$FM_MERGED"
else
  mount -t overlay overlay -o "ro,lowerdir=$FM_LOWER,$FM_OVERLAY_OPTS" "$FM_MERGED"
fi
cd /
if [ "$FM_API_FS" = 1 ]; then
  mount -t proc proc "$FM_MERGED/proc"
  mount -t sysfs -o ro sysfs "$FM_MERGED/sys"
  mount --rbind /dev "$FM_MERGED/dev"
  mount -t tmpfs -o mode=0755 tmpfs "$FM_MERGED/run"
  mkdir -p "$FM_MERGED/run/systemd/resolve" "$FM_MERGED/run/formation"
  cp -L /etc/resolv.conf "$FM_MERGED/run/systemd/resolve/stub-resolv.conf"
  cp -L /etc/resolv.conf "$FM_MERGED/run/systemd/resolve/resolv.conf"
  if [ -f "$FM_MERGED/etc/resolv.conf" ] && [ ! -L "$FM_MERGED/etc/resolv.conf" ]; then
    mount --bind /etc/resolv.conf "$FM_MERGED/etc/resolv.conf"
  fi
fi
"""


@dataclass(frozen=True)
class View:
    """An overlayfs view of the image: `lower` are layer directories relative to `cache`
    (topmost first; relative so that a mount option of one page holds many layers), `upper`
    receives the step's changes (None: a read-only view)."""
    cache: Path
    lower: Sequence[str]
    merged: Path
    upper: Path | None = None
    work: Path | None = None
    api_fs: bool = True  # /proc, /sys, /dev, /run: for chroot commands


async def run(view: View, body: str, on_line: Callable[[str], None],
              binds: Sequence[tuple[Path, str]] = ()) -> tuple[int, str]:
    """Runs `body` (sh, after the view is mounted at $FM_MERGED) in fresh namespaces; returns
    (exit status, last non-empty output line). `binds`: host paths made visible read-only at
    /run/formation/NAME inside the view (COPY sources, staged files). Cancelling kills the
    whole process group and waits for it, so the namespaces (and their mounts) are gone when
    this returns or raises."""
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "FM_CACHE": str(view.cache), "FM_LOWER": ":".join(view.lower),
        "FM_UPPER": str(view.upper or ""), "FM_WORK": str(view.work or ""),
        "FM_MERGED": str(view.merged), "FM_API_FS": "1" if view.api_fs else "0",
        "FM_OVERLAY_OPTS": OVERLAY_OPTS,
    }
    bind_lines = []
    for host, name in binds:
        target = f'"$FM_MERGED/run/formation/{name}"'
        make = f"mkdir -p {target}" if host.is_dir() else f": > {target}"
        bind_lines.append(f"{make}\nmount --bind -o ro {_q(str(host))} {target}")
    script = "set -eu\n" + PRELUDE + "\n".join(bind_lines) + "\n" + body
    proc = await asyncio.create_subprocess_exec(
        *NAMESPACES, "/bin/sh", "-c", script, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True)
    last = ""
    try:
        assert proc.stdout is not None
        pending = b""
        while chunk := await proc.stdout.read(65536):
            pending += chunk
            *lines, pending = pending.replace(b"\r", b"\n").split(b"\n")
            for raw in lines:
                text = raw.decode(errors="replace").strip()
                if text:
                    last = text
                    on_line(text)
        if pending.strip():
            last = pending.decode(errors="replace").strip()
            on_line(last)
        return await proc.wait(), last
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await asyncio.shield(proc.wait())


def _q(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"
