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


def _why_not(item: Capability | None) -> str:
    if item is None or item.ok is None:
        return "not probed yet"
    return item.reason or "unavailable"


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
    """The driver to run VMs with (None: none can run here) and one line saying why, e.g.
    "QEMU with TCG, software emulation (vmm.backend auto; no Cloud Hypervisor: ...; no KVM:
    ...)"."""
    wanted = settings.vmm.backend
    kvm, qemu, ch = (capabilities.get(n) for n in ("kvm", "qemu", "cloud_hypervisor"))
    kvm_ok = _ok(kvm)
    ch_problem = (None if _ok(ch) and kvm_ok
                  else _why_not(ch) if not _ok(ch)
                  else f"it needs KVM, and {_why_not(kvm)}")
    if ch_problem is None and wanted != "qemu":
        driver = _cloud_hypervisor(settings.probe.cloud_hypervisor_binary)
        if driver is not None:
            found = f" {ch.summary}" if ch is not None and ch.summary else ""
            return driver, (f"Cloud Hypervisor (vmm.backend {wanted}; {found.strip() or 'found'}"
                            "; KVM boots guests)")
        ch_problem = "this build has no Cloud Hypervisor driver"
    if wanted == "cloud-hypervisor":
        return None, f"none (vmm.backend cloud-hypervisor; no Cloud Hypervisor: {ch_problem})"
    setting = "vmm.backend qemu" if wanted == "qemu" else \
        f"vmm.backend auto; no Cloud Hypervisor: {ch_problem}"
    if not _ok(qemu):
        return None, f"none ({setting}; no QEMU: {_why_not(qemu)})"
    if kvm_ok:
        return (QemuDriver(settings.probe.qemu_binary, "kvm"),
                f"QEMU with KVM ({setting}; the probe booted a guest under KVM)")
    return (QemuDriver(settings.probe.qemu_binary, "tcg"),
            f"QEMU with TCG, software emulation ({setting}; no KVM: {_why_not(kvm)})")
