"""Which VMM this node runs its VMs with, and why: `vmm.backend` (auto | cloud-hypervisor |
qemu) against what the capability probe proved. The probe, not the presence of /dev/kvm,
decides about KVM: on some hosts /dev/kvm opens yet guests never finish booting under it.

auto prefers Cloud Hypervisor (the production VMM) when its binary answered and KVM works; else
QEMU, with KVM where the probe booted a guest under it, software emulation (TCG) otherwise. The
reason string is what `formation doctor` prints and what the reconciler logs."""

from __future__ import annotations

import importlib

from formation.api.models import Capabilities, Capability
from formation.config.settings import NodeSettings
from formation.node.vmm.driver import Driver
from formation.node.vmm.qemu import QemuDriver


def _ok(item: Capability | None) -> bool:
    return item is not None and item.ok is True


def _why_not(item: Capability | None, name: str) -> str:
    if item is None or item.ok is None:
        return f"{name} not probed yet"
    return f"{name}: {item.reason or 'unavailable'}"


def _cloud_hypervisor(binary: str) -> Driver | None:
    """Imported lazily: the Cloud Hypervisor driver is its own module (and may be absent from
    a build that only carries QEMU)."""
    try:
        module = importlib.import_module("formation.node.vmm.cloud_hypervisor")
    except ImportError:
        return None
    driver: Driver = module.CloudHypervisorDriver(binary)
    return driver


def select_driver(settings: NodeSettings, capabilities: Capabilities
                  ) -> tuple[Driver | None, str]:
    """The driver to run VMs with (None: none can run here) and one line saying why."""
    wanted = settings.vmm.backend
    kvm, qemu, ch = (capabilities.get(n) for n in ("kvm", "qemu", "cloud_hypervisor"))
    kvm_ok = _ok(kvm)
    ch_problem = (None if _ok(ch) and kvm_ok
                  else _why_not(ch, "cloud-hypervisor") if not _ok(ch)
                  else f"Cloud Hypervisor needs KVM ({_why_not(kvm, 'KVM')})")
    if ch_problem is None and wanted != "qemu":
        driver = _cloud_hypervisor(settings.probe.cloud_hypervisor_binary)
        if driver is not None:
            found = f" {ch.summary}" if ch is not None and ch.summary else ""
            return driver, (f"{wanted}: Cloud Hypervisor{found}: its binary answered and KVM "
                            "boots guests")
        ch_problem = "this build has no Cloud Hypervisor driver"
    if wanted == "cloud-hypervisor":
        return None, f"vmm.backend is cloud-hypervisor, but {ch_problem}"
    how = "qemu" if wanted == "qemu" else f"auto (not Cloud Hypervisor: {ch_problem})"
    if not _ok(qemu):
        return None, f"{how}: no VMM can run VMs here ({_why_not(qemu, 'qemu')})"
    if kvm_ok:
        return (QemuDriver(settings.probe.qemu_binary, "kvm"),
                f"{how}: QEMU with KVM (the probe booted a guest under it)")
    return (QemuDriver(settings.probe.qemu_binary, "tcg"),
            f"{how}: QEMU with TCG, software emulation ({_why_not(kvm, 'KVM')})")
