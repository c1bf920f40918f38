"""The one driver interface. The reconciler holds a `Driver` and the `Machine`s it returned;
Cloud Hypervisor (cloud_hypervisor.py) and QEMU (qemu.py) implement it. Every call is async and
never blocks the loop; a failure raises VmmError (or MachineGone) with a one-line message."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from formation.node.vmm.machine import MachineInfo, MachineSpec


@dataclass(frozen=True)
class MigrationProgress:
    """One look at an outgoing live migration, the same for every backend (what the event
    stream and the TUI show). `downtime_ms` only once it completed and the VMM measured it."""

    status: str  # setup | active | completed | failed (backend words mapped onto these)
    transferred_bytes: int = 0
    remaining_bytes: int = 0
    total_bytes: int = 0
    dirty_rate_pps: int = 0  # pages dirtied per second by the guest
    downtime_ms: int | None = None


Progress = Callable[[MigrationProgress], None]


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

    async def migrate(self, uri: str, progress: Progress) -> None:
        """Live-migrate this VM to the VMM listening at `uri` ("tcp:IP:PORT", started with
        Driver.create_incoming), calling `progress` as it goes; returns once the target runs
        the guest (this VM is then stopped, not destroyed: the caller destroys it). VmmError
        (the target's or the transfer's reason) when it fails: this VM keeps running."""

    async def incoming_state(self) -> str:
        """On a target made by create_incoming: "waiting" while the migration has not
        completed, "running" once the guest runs here; MachineGone when the VMM gave up."""


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

    async def create_incoming(self, spec: MachineSpec, listen: str) -> Machine:
        """Start the VMM for `spec` waiting for a live migration on `listen` (IP:PORT); the
        guest runs once the migration completes (Machine.incoming_state says when)."""
