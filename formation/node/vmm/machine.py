"""What a driver is asked to run and what it reports: plain values, the same for every backend,
so the reconciler never knows which VMM it drives."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from formation.errors import FormationError

Confidential = Literal["none", "sev-snp", "tdx"]
# In a VM's workdir: the unix socket of its interactive console (`vm console`), made by the VMM
# (QEMU: the serial port; Cloud Hypervisor: the virtio console, hvc0).
CONSOLE_SOCKET = "console.sock"
MachineState = Literal["created", "running", "paused", "shutdown"]


GUEST_MTU = 1420


@dataclass(frozen=True)
class Nic:
    """One virtio-net interface: the host tap it is attached to and the guest's MAC (derived
    from the instance id, so the guest keeps it on any host and across restarts)."""

    tap: str
    mac: str
    # wireguard-go's MTU: a guest whose frames are larger than the mesh's has every full-size
    # packet to another host wait for path-MTU discovery or fragmentation (the guests' own
    # throughput across hosts was a third of what they reach on one host)
    # (None: not told, as for a VM started before this; a migration target must match it)
    mtu: int | None = GUEST_MTU


@dataclass(frozen=True)
class MachineSpec:
    """One VM. `instance` (the id of its instance.create op, hex) names it on the host; every
    file of it lives in `workdir` (API socket, pid file), which outlives the node service so a
    restarted service can adopt the VM."""

    instance: str
    name: str
    vcpus: int
    memory_mb: int
    kernel: Path
    workdir: Path
    serial_log: Path  # the guest's serial output, appended as it comes
    initrd: Path | None = None
    cmdline: str = "console=ttyS0"
    disk: Path | None = None  # the instance's own disk: a qcow2 overlay over the image's disk
    # Ceilings for a live resize (hotplug); a resize beyond them needs a cold restart.
    max_vcpus: int | None = None
    max_memory_mb: int | None = None
    gpus: tuple[str, ...] = ()  # PCI addresses (0000:01:00.0) passed through with VFIO
    confidential: Confidential = "none"
    nics: tuple[Nic, ...] = field(default=())  # one virtio-net each, on the host's VM bridge
    seed: Path | None = None  # NoCloud seed (vfat, label CIDATA): a second, read-only disk


@dataclass(frozen=True)
class MachineInfo:
    state: MachineState
    vcpus: int
    memory_mb: int
    pid: int | None = None


class VmmError(FormationError):
    """A VMM refused or failed a request; the message is one line a user can act on."""


class MachineGone(VmmError):
    """The VMM process is not running any more (it exited, or was never adopted)."""
