"""Boots the real appliance image under QEMU (TCG) and reads what a person would see: the serial
console, the text on tty1, and what a key press does. Slow by nature (software emulation), so
each boot checks everything it can, and the two boots run side by side (one core each):

- interactive: direct kernel boot; the node, the console on tty1 and a key press;
- headless: the real firmware path, OVMF -> systemd-boot -> the boot entry on the ESP (with
  `formation.headless` added to it, as an operator would), enrolling from an answer partition."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from waiting import until_sync

from bench.support.guest import BuiltImage, Guest, ImageUnavailable, fat_answer_disk, uefi_disk

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.timeout(2400)]

BOOT_TIMEOUT_S = 600
NODE_READY = r"Started formation-node\.service"
MACHINE_IDENTITY = (r"formation: machine id ([0-9a-f]{32}), SSH host key 256 (SHA256:\S+) "
                    r"\S+ \(ED25519\)")


@pytest.fixture(scope="module")
def guests(built_image: BuiltImage) -> Iterator[dict[str, Guest]]:
    """Both guests, started together; each test reads its own. QEMU is killed at the end."""
    # Short paths: QEMU's monitor is a unix socket (108-byte limit).
    interactive_dir = Path(tempfile.mkdtemp(prefix="fm-guest-", dir="/tmp"))
    headless_dir = Path(tempfile.mkdtemp(prefix="fm-guest-", dir="/tmp"))
    try:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                        str(headless_dir / "admin")], check=True)
        key = (headless_dir / "admin.pub").read_text().strip()
        answer = fat_answer_disk(headless_dir / "answer.img", {"enroll.yaml": (
            f"version: 1\nhostname: edge-01\nnetwork:\n  found:\n    name: lab\n"
            f"admin_keys:\n  - {key}\nresources:\n  memory_mb: 256\n"
            f"underlay:\n  interface: enp0s5\n  mode: static\n  address: 192.0.2.20/24\n"
            f"  gateway: 192.0.2.1\n")})
        try:
            firmware_disk = uefi_disk(built_image, headless_dir / "uefi.raw",
                                      "formation.headless")
        except ImageUnavailable as exc:
            pytest.skip(str(exc))
        interactive = Guest(built_image, interactive_dir, disk_size="3G")
        headless = Guest(built_image, headless_dir, uefi_disk=firmware_disk,
                         extra_drives=[answer])
        with interactive, headless:
            yield {"interactive": interactive, "headless": headless}
    finally:
        shutil.rmtree(interactive_dir, ignore_errors=True)
        shutil.rmtree(headless_dir, ignore_errors=True)


def test_first_boot_runs_node_and_console(guests: dict[str, Guest], tmp_path: Path) -> None:
    guest = guests["interactive"]
    guest.wait_for(NODE_READY, BOOT_TIMEOUT_S)
    # The node created its identity on first start and says which it is.
    guest.wait_for(r'msg="node service started" node_id=[a-z0-9]{16,}', 60)
    # First boot: the machine makes its own id and host key; nothing was baked in (the other
    # guest, a first boot of the same image, must show others).
    ids = _machine_identity(guest)
    other = _machine_identity(guests["headless"])
    assert ids[0] != other[0] and ids[1] != other[1], "identity baked into the image"
    guest.wait_for(r"Started ssh\.service", 120)
    # The data partition took the disk (3 GiB, built as 64 MiB) and its file system followed.
    guest.wait_for(r"Successfully resized \"/var/lib/formation\" to [0-9.]+G", 120)

    # The console owns tty1 and draws there: the VGA text shows the Textual app.
    guest.wait_for(r"Started formation-console@tty1\.service", 120)
    guest.wait_for(r"Started formation-console@ttyS0\.service", 60)
    screen = _wait_for_screen(guest, "Formation", 180)
    assert "node:" in screen or "connecting" in screen, screen
    pixels = guest.screendump(tmp_path / "tty1.ppm")
    assert len(set(pixels[i:i + 3] for i in range(0, len(pixels), 3))) > 1, "blank screen"

    # A key acts: q quits the console, and systemd brings it back as a getty would. Under TCG on
    # a busy host the app may draw before it reads keys (CI once lost the first q), so the key is
    # pressed again while the console is still up, at most four times.
    quit_seen = r"formation-console@tty1\.service: (Deactivated successfully|Scheduled restart job)"
    for _press in range(4):
        guest.sendkey("q")
        if guest.appears(quit_seen, 30):
            break
    guest.wait_for(quit_seen, 1)
    guest.wait_for(r"(?s)Deactivated successfully.*Started formation-console@tty1", 120)


def test_headless_uefi_boot_enrolls_from_answer_partition(guests: dict[str, Guest]) -> None:
    guest = guests["headless"]
    # No -kernel: the firmware found systemd-boot, which started the entry's kernel and initrd
    # from the ESP; the entry's options (formation.headless) made the boot headless.
    guest.wait_for(r"Welcome to .*Debian", BOOT_TIMEOUT_S)
    guest.wait_for(NODE_READY, BOOT_TIMEOUT_S)
    guest.wait_for(r"answer file /run/formation/answer-media/enroll\.yaml", 120)
    guest.wait_for(r"valid: edge-01 will found network 'lab' with 1 admin key\(s\)", 120)
    # The underlay from the answer file: a networkd file the hardened node unit may write, and
    # systemd-networkd made to read it, for real (the only place here where networkd runs; the
    # appliance has no D-Bus, so systemd restarts networkd instead of a reload).
    guest.wait_for(r"/etc/systemd/network/10-formation-underlay\.network written; "
                   r"systemd-networkd restarted \(no D-Bus here for a reload\): applied now", 120)
    guest.wait_for(r"resources: offering [^\n]*256 MiB", 60)
    guest.wait_for(r"enrolled: founded network lab", 120)
    # The appliance's mesh: the kernel's WireGuard (the guest kernel has the module), addressed
    # from the network's state once the founder claims its address.
    guest.wait_for(r'msg="mesh interface up"[^\n]*backend=kernel', 60)
    guest.wait_for(r'msg="mesh address from the state" address=10\.42\.', 120)
    # form-dns answers on that mesh address (it binds only once the address is on the link)
    guest.wait_for(r'msg="dns serving on the mesh address" address=10\.42\.[0-9.]+ port=53', 60)
    log = guest.serial()
    assert not re.search(r"Start(ing|ed) formation-console@", log), "console ran headless"
    # the commands the node ran (systemctl for networkd) did not inherit its notify socket
    assert "reception only permitted for main PID" not in log, log


def _machine_identity(guest: Guest) -> tuple[str, str]:
    guest.wait_for(MACHINE_IDENTITY, BOOT_TIMEOUT_S)
    found = re.search(MACHINE_IDENTITY, guest.serial())
    assert found is not None
    return found.group(1), found.group(2)


def _wait_for_screen(guest: Guest, text: str, timeout_s: float) -> str:
    """tty1's text once it shows `text` (read through the QEMU monitor, once a second)."""
    def shown() -> str | None:
        screen = guest.screen_text()
        return screen if text in screen else None

    return until_sync(shown, timeout_s, 1.0, what=f"{text!r} on tty1",
                      context=lambda: f"the screen:\n{guest.screen_text()}\n"
                                      f"serial:\n{guest.tail()}")
