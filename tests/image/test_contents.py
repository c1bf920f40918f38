"""What the built image holds, read from its root file system with debugfs (nothing is mounted):
no secret or machine identity is baked in, and the project is there with its units."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from waiting import until_sync

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


def test_qemu_backend_is_installed(root_fs: Path) -> None:
    """The QEMU driver's binaries, and the firmware an x86 guest's direct kernel boot reads;
    the other emulators and other architectures' firmware are left out (image/mkosi.conf)."""
    usr_bin = debugfs(root_fs, "ls /usr/bin")
    for binary in ("qemu-system-x86_64", "qemu-img"):
        assert binary in usr_bin.split(), binary
    assert "qemu-system-i386" not in usr_bin
    share = debugfs(root_fs, "ls /usr/share/qemu").split()
    # microvm's firmware (the QEMU driver's machine) and the option ROM of direct kernel boot
    assert {"bios-microvm.bin", "qboot.rom", "linuxboot_dma.bin"} <= set(share), share
    assert "bios-256k.bin" in debugfs(root_fs, "ls /usr/share/seabios")  # q35, with GPUs
    assert not [name for name in share if name.startswith(("openbios-", "s390-", "opensbi-"))]


@pytest.fixture(scope="module")
def image_tree(root_fs: Path, tmp_path_factory) -> Path:
    """The image's /usr and /etc as a tree to chroot into (merged /usr, as in the image)."""
    root = tmp_path_factory.mktemp("tree")
    for tree in ("/usr", "/etc"):
        subprocess.run(["debugfs", "-R", f"rdump {tree} {root}", str(root_fs)], check=True,
                       capture_output=True, timeout=600)
    for link in ("bin", "sbin", "lib", "lib64"):
        (root / link).symlink_to(f"usr/{link}")
    (root / "tmp").mkdir()
    return root


def test_every_program_and_qemu_module_finds_its_libraries(image_tree: Path) -> None:
    """image/mkosi.conf removes QEMU's display and audio modules and the libraries only they
    load: nothing left may need one of them (ldd inside the image's tree)."""
    where = ["usr/bin", "usr/sbin", "usr/libexec", "usr/lib/systemd",
             "usr/lib/x86_64-linux-gnu/qemu"]
    elves = [path for directory in where for path in sorted((image_tree / directory).rglob("*"))
             if path.is_file() and not path.is_symlink() and path.read_bytes()[:4] == b"\x7fELF"]
    assert len(elves) > 100, "the tree holds the image's programs"
    missing = {}
    for chunk in range(0, len(elves), 200):
        batch = [f"/{path.relative_to(image_tree)}" for path in elves[chunk:chunk + 200]]
        out = subprocess.run(["chroot", str(image_tree), "/usr/bin/ldd", *batch],
                             capture_output=True, text=True, timeout=300).stdout
        current = ""
        for line in out.splitlines():
            if line.startswith("/") and line.endswith(":"):
                current = line[:-1]
            elif "not found" in line:
                missing.setdefault(current, []).append(line.split()[0])
    assert not missing, missing


def test_qemu_from_the_image_boots_a_kernel(image_tree: Path, built_image: BuiltImage) -> None:
    """The image's own QEMU, with its own libraries, modules and firmware (in a chroot of the
    image's tree), starts the appliance's kernel under TCG: nothing it needs was removed."""
    shutil.copyfile(built_image.kernel, image_tree / "tmp/vmlinuz")
    serial = image_tree / "tmp/serial.log"
    qemu = subprocess.Popen(
        ["chroot", str(image_tree), "/usr/bin/qemu-system-x86_64", "-accel", "tcg",
         "-machine", "microvm", "-m", "256", "-nodefaults", "-display", "none", "-no-reboot",
         "-kernel", "/tmp/vmlinuz", "-append",
         "console=ttyS0 panic=-1 tsc_early_khz=2000000 no_timer_check",
         "-serial", "file:/tmp/serial.log"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def booting() -> bool:
            if qemu.poll() is not None:
                assert qemu.stdout is not None
                raise AssertionError(f"the image's QEMU exited: {qemu.stdout.read()!r}")
            return serial.exists() and b"Linux version" in serial.read_bytes()
        until_sync(booting, timeout_s=120, what="the kernel's banner on the serial line")
    finally:
        qemu.kill()
        qemu.wait(30)


def test_cloud_hypervisor_is_shipped_when_given(root_fs: Path) -> None:
    """`just image ... --cloud-hypervisor PATH` (or FORMATION_CLOUD_HYPERVISOR, which the shared
    build in conftest passes on) copies that binary to /usr/bin/cloud-hypervisor."""
    given = os.environ.get("FORMATION_CLOUD_HYPERVISOR")
    if not given:
        pytest.skip("built without a Cloud Hypervisor binary (FORMATION_CLOUD_HYPERVISOR)")
    listing = debugfs(root_fs, "stat /usr/bin/cloud-hypervisor")
    assert f"Size: {Path(given).stat().st_size}" in listing, listing
    assert "Mode:  0755" in listing, listing


def test_edge_engine_is_installed_but_not_started_by_debian(root_fs: Path) -> None:
    """Caddy is shipped for the edge role, which the node starts itself; Debian's units for it
    are masked, or every node would run a Caddy with an admin API on TCP."""
    assert "caddy" in debugfs(root_fs, "ls /usr/bin").split()
    for unit in ("caddy.service", "caddy-api.service"):
        assert '"/dev/null"' in debugfs(root_fs, f"stat /etc/systemd/system/{unit}"), unit


def test_tcp_route_engine_is_installed_but_not_started_by_debian(root_fs: Path) -> None:
    """HAProxy is shipped for the edge's tcp routes, which the node starts itself while one
    exists; Debian's unit is masked, or every node would run one with Debian's sample config."""
    assert "haproxy" in debugfs(root_fs, "ls /usr/sbin").split()
    assert '"/dev/null"' in debugfs(root_fs, "stat /etc/systemd/system/haproxy.service")
