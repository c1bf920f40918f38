"""The one driver interface. The reconciler holds a `Driver` and the `Machine`s it returned;
Cloud Hypervisor (cloud_hypervisor.py) and QEMU (qemu.py) implement it. Every call is async and
never blocks the loop; a failure raises VmmError (or MachineGone) with a one-line message."""

from __future__ import annotations

from typing import Protocol

from formation.node.vmm.machine import MachineInfo, MachineSpec


class Machine(Protocol):
    """One VMM process running one VM. The process is started in its own session so that it
    survives the node service (adoption); `destroy` is the only call that ends it."""

    spec: MachineSpec

    @property
    def pid(self) -> int | None: ...

    async def boot(self) -> None:
        """Start the created VM (CH vm.boot; QEMU cont)."""

    async def info(self) -> MachineInfo:
        """The VMM's view now; MachineGone when the process has exited."""

    async def pause(self) -> None: ...

    async def resume(self) -> None: ...

    async def shutdown(self) -> None:
        """Stop the guest at once, keeping the VMM process (CH vm.shutdown: state `shutdown`)."""

    async def power_button(self) -> None:
        """Ask the guest to power off (ACPI power button); it may take its time or ignore it."""

    async def reboot(self) -> None: ...

    async def resize(self, vcpus: int, memory_mb: int) -> bool:
        """Resize the running VM. True when done live; False when this VM cannot be resized
        live to that size (no hotplug, beyond the ceilings), so the caller restarts it cold."""

    async def counters(self) -> dict[str, dict[str, int]]:
        """Per-device counters (CH vm.counters; QEMU: block and net statistics)."""

    async def destroy(self) -> None:
        """End the VM and its VMM process (CH vm.delete + vmm.shutdown, then kill if it lingers;
        QEMU quit). Idempotent; leaves the files in workdir (serial log, disk)."""


class Driver(Protocol):
    name: str  # "cloud-hypervisor" or "qemu"

    def refusal(self, spec: MachineSpec) -> str | None:
        """Why this host cannot run `spec` (a confidential VM without SEV-SNP/TDX, a GPU that is
        not bound to vfio-pci, ...), one line; None when it can."""

    async def create(self, spec: MachineSpec) -> Machine:
        """Start the VMM process for `spec` and create the VM in it, not booted yet."""

    async def adopt(self, spec: MachineSpec) -> Machine | None:
        """The VMM process an earlier node service left running for `spec.workdir`, answering
        on its socket; None when there is none (stale files are removed)."""
