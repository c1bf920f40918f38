"""What the QEMU driver refuses before starting anything, read from a sysfs tree (a temporary
directory shaped like /sys/bus/pci: no GPU on this machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from formation.node.vmm.machine import MachineSpec, VmmError
from formation.node.vmm.qemu import QemuDriver


def spec(tmp: Path, **changes: object) -> MachineSpec:
    values: dict = dict(instance="ef" * 16, name="gpu", vcpus=1, memory_mb=512,
                        kernel=tmp / "vmlinuz", workdir=tmp / "vm",
                        serial_log=tmp / "vm" / "serial.log")
    values.update(changes)
    return MachineSpec(**values)


def pci_device(sysfs: Path, address: str, driver: str | None) -> None:
    device = sysfs / "bus" / "pci" / "devices" / address
    device.mkdir(parents=True)
    if driver is not None:
        target = sysfs / "bus" / "pci" / "drivers" / driver
        target.mkdir(parents=True, exist_ok=True)
        (device / "driver").symlink_to(target)


def test_confidential_vms_are_refused_with_the_reason(tmp_path: Path) -> None:
    why = QemuDriver("qemu", "tcg", sysfs=tmp_path).refusal(
        spec(tmp_path, confidential="sev-snp"))
    assert why is not None and why.startswith("confidential: sev-snp")


def test_gpu_refused_unless_present_and_bound_to_vfio_pci(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    pci_device(sysfs, "0000:01:00.0", "nvidia")
    pci_device(sysfs, "0000:02:00.0", None)
    pci_device(sysfs, "0000:03:00.0", "vfio-pci")
    driver = QemuDriver("qemu", "tcg", sysfs=sysfs)
    assert driver.refusal(spec(tmp_path, gpus=("0000:09:00.0",))) == \
        "gpus: 0000:09:00.0 is not a PCI device on this host"
    bound = driver.refusal(spec(tmp_path, gpus=("0000:01:00.0",)))
    assert bound is not None and "bound to nvidia, not vfio-pci" in bound
    unbound = driver.refusal(spec(tmp_path, gpus=("0000:02:00.0",)))
    assert unbound is not None and "bound to no driver" in unbound
    assert driver.refusal(spec(tmp_path, gpus=("0000:03:00.0",))) is None
    assert driver.refusal(spec(tmp_path)) is None


async def test_create_refuses_before_starting_anything(tmp_path: Path) -> None:
    driver = QemuDriver("qemu-system-x86_64", "tcg", sysfs=tmp_path)
    with pytest.raises(VmmError, match="confidential"):
        await driver.create(spec(tmp_path, confidential="tdx"))
    assert not (tmp_path / "vm").exists()


async def test_adopt_without_a_process_is_none(tmp_path: Path) -> None:
    driver = QemuDriver("qemu-system-x86_64", "tcg", sysfs=tmp_path)
    assert await driver.adopt(spec(tmp_path)) is None
