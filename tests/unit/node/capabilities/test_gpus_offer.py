"""GPUs and confidential-computing support into the node's offer. This host has no GPU and no
SEV-SNP/TDX, so the tests build a fake sysfs tree (the same files the kernel exposes) in
tmp_path; on this host's real sysfs the offer carries neither."""

from __future__ import annotations

from pathlib import Path

from formation.api.models import Resources
from formation.config.settings import ResourceOffer
from formation.node.capabilities.gpus import confidential_kinds, offered_gpus, scan_gpus
from formation.node.capabilities.offer import offered_with_devices
from formation.node.state.instance_spec import PCI_ADDRESS

HOST = Resources(cpus=8, memory_total_mb=16384, memory_available_mb=8000, disk_total_gb=500,
                 disk_free_gb=300, load_1m=0.1)


def pci(root: Path, address: str, cls: str, vendor: str = "0x10de", device: str = "0x2204",
        driver: str | None = None, boot_vga: bool = False) -> None:
    dev = root / "bus" / "pci" / "devices" / address
    dev.mkdir(parents=True)
    (dev / "class").write_text(cls + "\n")
    (dev / "vendor").write_text(vendor + "\n")
    (dev / "device").write_text(device + "\n")
    if boot_vga:
        (dev / "boot_vga").write_text("1\n")
    if driver:
        target = root / "bus" / "pci" / "drivers" / driver
        target.mkdir(parents=True, exist_ok=True)
        (dev / "driver").symlink_to(target)


def fake_sysfs(root: Path) -> Path:
    pci(root, "0000:00:02.0", "0x030000", "0x8086", "0x46a6", "i915", boot_vga=True)
    pci(root, "0000:01:00.0", "0x030000", driver="vfio-pci")
    pci(root, "0000:41:00.0", "0x030200", driver="nvidia")  # 3D controller
    pci(root, "0000:00:1f.3", "0x040300")  # audio: no GPU
    pci(root, "0000:02:00.0", "0x020000")  # network: no GPU
    return root


def test_scan_finds_display_class_devices_with_their_driver(tmp_path) -> None:
    gpus = scan_gpus(fake_sysfs(tmp_path))
    assert [(g.address, g.driver, g.boot_vga) for g in gpus] == [
        ("0000:00:02.0", "i915", True), ("0000:01:00.0", "vfio-pci", False),
        ("0000:41:00.0", "nvidia", False)]
    assert gpus[1].vendor == "0x10de" and gpus[1].device == "0x2204"
    assert all(PCI_ADDRESS.match(g.address) for g in gpus)  # what the rules accept


def test_the_setting_limits_what_is_offered(tmp_path) -> None:
    root = fake_sysfs(tmp_path)
    assert offered_gpus(None, root) == ["0000:01:00.0", "0000:41:00.0"]  # not the console
    assert offered_gpus(["0000:41:00.0", "0000:00:02.0", "0000:99:00.0"], root) == [
        "0000:00:02.0", "0000:41:00.0"]  # named ones that exist, the console if asked
    assert offered_gpus([], root) == []


def test_no_sysfs_no_gpus(tmp_path) -> None:
    assert scan_gpus(tmp_path / "missing") == [] and confidential_kinds(tmp_path) == []


def test_confidential_kinds_from_kvm_parameters(tmp_path) -> None:
    for module, param, value in (("kvm_amd", "sev_snp", "Y"), ("kvm_intel", "tdx", "N")):
        where = tmp_path / "module" / module / "parameters"
        where.mkdir(parents=True)
        (where / param).write_text(value + "\n")
    assert confidential_kinds(tmp_path) == ["sev-snp"]
    (tmp_path / "module" / "kvm_intel" / "parameters" / "tdx").write_text("1\n")
    assert confidential_kinds(tmp_path) == ["sev-snp", "tdx"]


def test_the_offer_carries_devices_only_when_there_are_some(tmp_path) -> None:
    root = fake_sysfs(tmp_path / "sys")
    offer = offered_with_devices(ResourceOffer(cpus=4, gpus=["0000:01:00.0"]), HOST, root)
    assert offer == {"cpus": 4, "memory_mb": 16384, "disk_gb": 500, "gpus": ["0000:01:00.0"]}
    plain = offered_with_devices(ResourceOffer(), HOST, tmp_path / "empty")
    assert plain == {"cpus": 8, "memory_mb": 16384, "disk_gb": 500}
