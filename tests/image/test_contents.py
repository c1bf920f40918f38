"""What the built image holds, read from its root file system with debugfs (nothing is mounted):
no secret or machine identity is baked in, and the project is there with its units."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.support.guest import BuiltImage

pytestmark = [pytest.mark.root, pytest.mark.timeout(2400)]


@pytest.fixture(scope="module")
def root_fs(built_image: BuiltImage, tmp_path_factory) -> Path:
    if shutil.which("debugfs") is None:
        pytest.skip("debugfs (e2fsprogs) is not installed")
    table = json.loads(subprocess.run(["sfdisk", "--json", str(built_image.disk)],
                                      capture_output=True, text=True, check=True).stdout)
    root = next(p for p in table["partitiontable"]["partitions"]
                if p.get("name") == "formation-root")
    out = tmp_path_factory.mktemp("root") / "root.ext4"
    sector = table["partitiontable"].get("sectorsize", 512)
    subprocess.run(["dd", f"if={built_image.disk}", f"of={out}", "bs=4M", "status=none",
                    "iflag=skip_bytes,count_bytes", f"skip={root['start'] * sector}",
                    f"count={root['size'] * sector}"], check=True)
    return out


def debugfs(fs: Path, command: str) -> str:
    done = subprocess.run(["debugfs", "-R", command, str(fs)], capture_output=True, text=True,
                          timeout=60)
    return done.stdout


def test_no_secrets_or_identity_are_baked_in(root_fs: Path) -> None:
    assert debugfs(root_fs, "cat /etc/machine-id") == "", "machine id must be made at boot"
    ssh = debugfs(root_fs, "ls /etc/ssh")
    assert "sshd_config" in ssh
    assert "ssh_host_" not in ssh, ssh
    assert "identity.key" not in debugfs(root_fs, "ls /var/lib/formation")


def test_project_and_units_are_installed(root_fs: Path) -> None:
    assert "cli.py" in debugfs(root_fs, "ls /usr/lib/formation/site/formation")
    assert "aiohttp" in debugfs(root_fs, "ls /usr/lib/formation/site")
    assert "site" in debugfs(root_fs, "cat /usr/bin/formation")
    wants = debugfs(root_fs, "ls /etc/systemd/system/getty.target.wants")
    assert "formation-console@tty1.service" in wants
    assert "formation-console@ttyS0.service" in wants
    assert "formation-node.service" in debugfs(root_fs,
                                               "ls /etc/systemd/system/multi-user.target.wants")
    for unit in ("getty@tty1.service", "getty-static.service", "systemd-binfmt.service"):
        assert '"/dev/null"' in debugfs(root_fs, f"stat /etc/systemd/system/{unit}"), unit


def test_boot_files_live_on_the_esp_only(root_fs: Path) -> None:
    boot = debugfs(root_fs, "ls /boot")
    assert "initrd" not in boot and "vmlinuz" not in boot, boot


def test_compressed_image_size_is_reported(built_image: BuiltImage) -> None:
    assert built_image.compressed.exists()
    assert built_image.compressed.stat().st_size < built_image.disk.stat().st_size
