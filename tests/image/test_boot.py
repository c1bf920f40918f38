"""Boots the real appliance image under QEMU (TCG) and reads what a person would see: the serial
console, the text on tty1, and what a key press does. Slow by nature (software emulation), so
each boot checks everything it can: one interactive boot, one headless boot."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from guest import BuiltImage, Guest, fat_answer_disk

pytestmark = [pytest.mark.qemu, pytest.mark.root, pytest.mark.timeout(2400)]

BOOT_TIMEOUT_S = 600
NODE_READY = r"Started formation-node\.service"
MACHINE_IDENTITY = (r"formation: machine id ([0-9a-f]{32}), SSH host key 256 (SHA256:\S+) "
                    r"\S+ \(ED25519\)")
FIRST_BOOT_IDS: list[tuple[str, str]] = []


def test_first_boot_runs_node_and_console(built_image: BuiltImage, guest_dir: Path) -> None:
    with Guest(built_image, guest_dir, disk_size="3G") as guest:
        guest.wait_for(NODE_READY, BOOT_TIMEOUT_S)
        # First boot: the machine makes its own id and host key; nothing was baked in (the
        # headless boot of the same image must show others: see FIRST_BOOT_IDS).
        FIRST_BOOT_IDS.append(_machine_identity(guest))
        guest.wait_for(r"Started ssh\.service", 60)
        # The node created its identity on first start and says which it is.
        guest.wait_for(r'msg="node service started" node_id=[a-z0-9]{16,}', 60)
        # The data partition took the disk (3 GiB, built as 64 MiB) and its file system followed.
        guest.wait_for(r"Successfully resized \"/var/lib/formation\" to [0-9.]+G", 120)

        # The console owns tty1 and draws there: the VGA text shows the Textual app.
        guest.wait_for(r"Started formation-console@tty1\.service", 120)
        guest.wait_for(r"Started formation-console@ttyS0\.service", 60)
        screen = _wait_for_screen(guest, "Formation", 120)
        assert "node:" in screen or "connecting" in screen, screen
        pixels = guest.screendump(guest_dir / "tty1.ppm")
        assert len(set(pixels[i:i + 3] for i in range(0, len(pixels), 3))) > 1, "blank screen"

        # A key acts: q quits the console, and systemd brings it back as a getty would.
        guest.sendkey("q")
        guest.wait_for(r"formation-console@tty1\.service: (Deactivated successfully|"
                       r"Scheduled restart job)", 60)
        guest.wait_for(r"(?s)Deactivated successfully.*Started formation-console@tty1", 120)


def test_headless_boot_enrolls_from_answer_partition(
    built_image: BuiltImage, guest_dir: Path
) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    str(guest_dir / "admin")], check=True)
    key = (guest_dir / "admin.pub").read_text().strip()
    answer = fat_answer_disk(guest_dir / "answer.img", {"enroll.yaml": (
        f"version: 1\nhostname: edge-01\nnetwork:\n  found:\n    name: lab\n"
        f"admin_keys:\n  - {key}\n")})
    with Guest(built_image, guest_dir, cmdline_extra="formation.headless",
               extra_drives=[answer]) as guest:
        guest.wait_for(NODE_READY, BOOT_TIMEOUT_S)
        ids = _machine_identity(guest)
        for earlier in FIRST_BOOT_IDS:
            assert ids[0] != earlier[0] and ids[1] != earlier[1], "identity baked into image"
        guest.wait_for(r"answer file /run/formation/answer-media/enroll\.yaml", 120)
        guest.wait_for(r"valid: edge-01 will found network 'lab' with 1 admin key\(s\)", 120)
        guest.wait_for(r"enrolled: founded network lab", 120)
        log = guest.serial()
        assert not re.search(r"Start(ing|ed) formation-console@", log), "console ran headless"
        assert "Formation" not in guest.screen_text()


def _machine_identity(guest: Guest) -> tuple[str, str]:
    guest.wait_for(MACHINE_IDENTITY, 120)
    found = re.search(MACHINE_IDENTITY, guest.serial())
    assert found is not None
    return found.group(1), found.group(2)


def _wait_for_screen(guest: Guest, text: str, timeout_s: float) -> str:
    import time

    deadline = time.monotonic() + timeout_s
    screen = ""
    while time.monotonic() < deadline:
        screen = guest.screen_text()
        if text in screen:
            return screen
        time.sleep(1)
    raise AssertionError(f"{text!r} never appeared on tty1; the screen:\n{screen}\n"
                         f"serial:\n{guest.tail()}")
