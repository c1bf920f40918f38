"""Runs every probe, slow ones off the event loop, and keeps the latest result."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path

from formation.api.models import VMM_CAPABILITIES, Capabilities, Capability, VmmKind
from formation.config.settings import ProbeSettings
from formation.node.capabilities import guest, host

log = logging.getLogger(__name__)

# KVM is called unusable when the test guest is this much slower than under software emulation.
KVM_SLOWDOWN_LIMIT = 3.0
KVM_SLOW_FLOOR_S = 1.0


def _judge_kvm(device: Capability, tcg: guest.BootResult, kvm: guest.BootResult) -> Capability:
    if not kvm.ok:
        return Capability(name="kvm", ok=False, reason=f"/dev/kvm opens, but {kvm.detail}")
    if tcg.ok and kvm.seconds > max(KVM_SLOW_FLOOR_S, KVM_SLOWDOWN_LIMIT * tcg.seconds):
        return Capability(
            name="kvm", ok=False,
            reason=f"/dev/kvm opens, but the test guest took {kvm.seconds:.1f} s under KVM vs "
            f"{tcg.seconds:.2f} s under software emulation: VM exits are too slow for a real "
            "guest (nested virtualization?)",
        )
    return Capability(name="kvm", ok=True, summary=f"{device.summary}; {kvm.detail}")


class CapabilityProber:
    def __init__(self, settings: ProbeSettings, data_dir: Path) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self.current = Capabilities()
        self._lock = asyncio.Lock()

    async def _vmm(self) -> tuple[Capability, Capability, Capability]:
        s = self.settings
        device = await asyncio.to_thread(host.kvm_device)
        qemu = await host.binary_version(s.qemu_binary, "qemu", r"version (\S+)")
        ch = await host.binary_version(
            s.cloud_hypervisor_binary, "cloud_hypervisor", r"cloud-hypervisor v?(\S+)"
        )
        if not qemu.ok:
            kvm = device if not device.ok else device.model_copy(
                update={"summary": device.summary + " (ioctl check only: no QEMU to boot a test "
                        "guest)"})
            return kvm, qemu, ch
        if not s.boot_test:
            unproven = "not proven: the boot test is off (probe.boot_test: false)"
            kvm = device.model_copy(update={"ok": False, "reason": unproven}) if device.ok \
                else device
            return kvm, qemu, ch
        tcg = await guest.boot_test(s.qemu_binary, "tcg", s.kvm_boot_timeout_s)
        qemu = qemu.model_copy(update={"summary": f"{qemu.summary}; TCG: {tcg.detail}"}) \
            if tcg.ok else qemu.model_copy(update={"ok": False, "reason": tcg.detail})
        if not device.ok:
            return device, qemu, ch
        kvm_boot = await guest.boot_test(s.qemu_binary, "kvm", s.kvm_boot_timeout_s)
        return _judge_kvm(device, tcg, kvm_boot), qemu, ch

    async def _vmm_again_or_last(self, only: Collection[str] | None
                                 ) -> tuple[Capability, Capability, Capability]:
        """The VMM probe boots test guests (seconds); skip it when the caller asked only for
        cheap facts and an earlier result exists."""
        kvm, qemu, ch = (self.current.get(name) for name in ("kvm", "qemu", "cloud_hypervisor"))
        if only is not None and not VMM_CAPABILITIES & set(only) and kvm and qemu and ch:
            return kvm, qemu, ch
        kvm, qemu, ch = await self._vmm()
        if ch.ok and not kvm.ok:
            ch = ch.model_copy(update={"summary": ch.summary + " (unusable without KVM)"})
        return kvm, qemu, ch

    async def probe(self, only: Collection[str] | None = None) -> Capabilities:
        async with self._lock:
            kvm, qemu, ch = await self._vmm_again_or_last(only)
            wg, wg_backend = host.wireguard()
            res = await asyncio.to_thread(host.resources, self.data_dir)
            items = [
                kvm, qemu, ch, wg, host.wg_tools(), host.ip_forwarding(),
                host.sized("cpus", res.cpus, "CPUs", 1),
                host.sized("memory", round(res.memory_total_mb / 1024, 1), "GiB", 0.5),
                host.sized("disk", res.disk_free_gb, "GB free", 1.0),
            ]
            vmm: VmmKind = (
                "cloud-hypervisor" if ch.ok and kvm.ok
                else "qemu-kvm" if qemu.ok and kvm.ok
                else "qemu-tcg" if qemu.ok
                else "none"
            )
            self.current = Capabilities(
                probed_at=datetime.now(UTC), wireguard_backend=wg_backend, vmm_backend=vmm,
                items=items,
            )
            log.info("capabilities probed", extra={"fields": {
                "vmm": vmm, "wireguard": wg_backend,
                "missing": ",".join(i.name for i in items if not i.ok) or "none"}})
            return self.current
