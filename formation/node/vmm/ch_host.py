"""What this host offers a Cloud Hypervisor VM beyond KVM: SEV-SNP or TDX, and GPUs bound to
vfio-pci. Read from sysfs (`sys_root` so tests can present another host) and from the VMM
build's features (vmm.ping): both must agree before a confidential VM is promised, because a
default CH build ignores `platform.sev_snp` silently and would boot an unprotected guest."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from formation.node.vmm.machine import MachineSpec

# kind -> (kernel module parameter, CH build feature, name people know it by)
CONFIDENTIAL = {
    "sev-snp": ("kvm_amd/parameters/sev_snp", "sev_snp", "SEV-SNP"),
    "tdx": ("kvm_intel/parameters/tdx", "tdx", "TDX"),
}


def _enabled(path: Path) -> bool | None:
    """The parameter's truth, None when the file does not exist."""
    try:
        return path.read_text().strip() in ("Y", "y", "1")
    except FileNotFoundError:
        return None
    except OSError:
        return False


def confidential_refusal(kind: str, sys_root: Path,
                         features: Collection[str] | None) -> str | None:
    """Why this host cannot run a `kind` confidential VM; None when it can. `features` is the
    CH build's list (None: not known yet, so only the kernel is checked)."""
    if kind == "none":
        return None
    if kind not in CONFIDENTIAL:
        return f"confidential must be none, sev-snp or tdx, not {kind!r}"
    param, feature, name = CONFIDENTIAL[kind]
    path = sys_root / "module" / param
    state = _enabled(path)
    if state is None:
        return f"{name} asked, but this host's CPU/kernel does not offer it ({path} missing)"
    if not state:
        return f"{name} asked, but this host's kernel has it disabled ({path} is not Y)"
    if features is not None and feature not in features:
        return (f"{name} asked, but this cloud-hypervisor build lacks the {feature} feature "
                f"(it has: {', '.join(sorted(features)) or 'none'})")
    return None


def gpu_refusal(address: str, sys_root: Path) -> str | None:
    """Why the PCI function `address` cannot be passed through; None when it is VFIO-bound."""
    device = sys_root / "bus" / "pci" / "devices" / address
    if not device.exists():
        return f"GPU {address} asked, but this host has no such PCI device ({device} missing)"
    driver = device / "driver"
    bound = driver.resolve().name if driver.exists() else None
    if bound != "vfio-pci":
        return (f"GPU {address} is not bound to vfio-pci (driver: {bound or 'none'}); "
                f"bind it before passing it through")
    return None


def spec_refusal(spec: MachineSpec, sys_root: Path, features: Collection[str] | None,
                 *, firmware: Path | None, igvm: Path | None) -> str | None:
    reason = confidential_refusal(spec.confidential, sys_root, features)
    if reason is None and spec.confidential == "tdx" and firmware is None:
        reason = "TDX asked, but no TD firmware (TDVF) is configured for cloud-hypervisor"
    if (reason is None and spec.confidential == "sev-snp" and igvm is None
            and features is not None and "igvm" in features):
        reason = "SEV-SNP asked, but no IGVM payload is configured for cloud-hypervisor"
    for address in spec.gpus:
        reason = reason or gpu_refusal(address, sys_root)
    return reason
