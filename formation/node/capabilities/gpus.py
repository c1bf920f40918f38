"""The host's GPUs and confidential-computing support, read from sysfs, for the node's offer.

A GPU is a PCI device of class 0x03xxxx (display controller). The one the firmware booted the
console on (`boot_vga` = 1) is left out unless the `resources.gpus` setting names it: handing
the host's own console to a guest is never what an operator meant by default. SEV-SNP and TDX
count when KVM's module says they are enabled. Plain file reads: callers run them in a thread."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SYSFS = Path("/sys")


@dataclass(frozen=True)
class Gpu:
    address: str  # PCI address, 0000:01:00.0
    vendor: str  # 0x10de
    device: str
    driver: str | None  # the bound driver (vfio-pci when ready for passthrough)
    boot_vga: bool


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def scan_gpus(sysfs: Path = SYSFS) -> list[Gpu]:
    """Every display-class PCI device, sorted by address."""
    root = sysfs / "bus" / "pci" / "devices"
    try:
        devices = sorted(root.iterdir())
    except OSError:
        return []
    found = []
    for dev in devices:
        if not _read(dev / "class").lower().startswith("0x03"):
            continue
        driver = dev / "driver"
        found.append(Gpu(dev.name, _read(dev / "vendor"), _read(dev / "device"),
                         driver.resolve().name if driver.exists() else None,
                         _read(dev / "boot_vga") == "1"))
    return found


def offered_gpus(setting: list[str] | None, sysfs: Path = SYSFS) -> list[str]:
    """PCI addresses offered: those the setting names that exist, or (unset) every GPU but
    the boot console's."""
    gpus = scan_gpus(sysfs)
    if setting is None:
        return [g.address for g in gpus if not g.boot_vga]
    wanted = {a.lower() for a in setting}
    return [g.address for g in gpus if g.address in wanted]


def _enabled(path: Path) -> bool:
    return _read(path) in ("1", "Y", "y")


def confidential_kinds(sysfs: Path = SYSFS) -> list[str]:
    """sev-snp and/or tdx, where KVM has them enabled."""
    kinds = []
    if _enabled(sysfs / "module" / "kvm_amd" / "parameters" / "sev_snp"):
        kinds.append("sev-snp")
    if _enabled(sysfs / "module" / "kvm_intel" / "parameters" / "tdx"):
        kinds.append("tdx")
    return kinds
