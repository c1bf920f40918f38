"""Where the CPU goes in a throughput round of bench/fleet.py: the CPU time of each process on
the path (the guests' QEMU processes, the hosts' wireguard-go, the benchmark's own socket
threads for the mesh round) divided by the megabytes the round moved.

Why: on this machine every round runs with the cores busy, so a path's throughput follows from
what it costs per byte. The mesh round's wireguard-go is native code; a VM round adds two
emulated (TCG) guest kernels whose TCP work is the larger share. With the costs per MB of both
paths in the same run, vm_net_ratio can be checked against what the CPU allows
(`cpu_bound_ratio`: mesh cost / VM cost, the ratio when both are limited by the same cores).

Process CPU times come from /proc/PID/stat (utime + stime of every thread, exited ones
included), in clock ticks."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the whole process; 0 once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _net_ns(pid: int | str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def find(netns: dict[str, str], instance_ids: dict[str, str]) -> dict[str, int]:
    """PIDs by label: `wireguard-go@HOST` for each host's network namespace (name under
    /run/netns) and `qemu@NAME` for each instance (its QEMU is named
    formation-<first 12 hex of its id>: formation/node/vmm/qemu_args.py)."""
    inodes = {os.stat(f"/run/netns/{ns}").st_ino: host for host, ns in netns.items()}
    tags = {f"process=formation-{iid[:12]}".encode(): name for name, iid in instance_ids.items()}
    found: dict[str, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        exe = os.path.basename(argv[0]) if argv else b""
        if exe == b"wireguard-go":
            host = inodes.get(_net_ns(entry) or -1)
            if host is not None:
                found[f"wireguard-go@{host}"] = int(entry)
        elif exe.startswith(b"qemu-system"):
            for tag, name in tags.items():
                if any(tag in arg for arg in argv):
                    found[f"qemu@{name}"] = int(entry)
    return found


@dataclass
class Meter:
    """CPU seconds of labelled processes over one round (start, then per_mb)."""

    pids: dict[str, int]
    _start: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self._start = {label: cpu_seconds(pid) for label, pid in self.pids.items()}

    def per_mb(self, megabytes: float, labels: list[str]) -> dict[str, float]:
        """CPU milliseconds per MB moved, for each of `labels` (missing ones: absent)."""
        out = {}
        for label in labels:
            if label in self.pids:
                used = cpu_seconds(self.pids[label]) - self._start[label]
                out[label] = round(used * 1000 / max(megabytes, 1e-6), 1)
        return out


def own_thread_seconds() -> float:
    """CPU of this process (the benchmark: the mesh round's sender and receiver threads)."""
    return cpu_seconds(os.getpid())


def cpu_bound_ratio(mesh: dict[str, float], vm: dict[str, float]) -> float | None:
    """What vm_net_ratio is when both paths are held back only by the same busy cores: the
    mesh's CPU per MB over the VM path's."""
    total_vm = sum(vm.values())
    return round(sum(mesh.values()) / total_vm, 3) if total_vm else None
