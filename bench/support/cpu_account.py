"""CPU accounting by role over one throughput round, and the throughput the CPU allows.

Why: on this 2-core machine a benchmark's chain (load generator, proxy, backend; or guest,
wireguard-go, wireguard-go, guest) shares the cores with itself and with other work, so a
missed ratio is only explained once we know what each stage costs per unit moved. Each role's
CPU comes from /proc/PID/stat (utime + stime of every thread, exited threads included, plus
cutime + cstime: its reaped children) of its processes and their live descendants; the machine's
from /proc/stat. What no role accounts for is split into:
  steal  time the hypervisor gave our vCPUs to someone else: cores we did not have;
  other  every other process (the lab's nodes, other people's work), and kernel work done
         while no role's process was on the CPU: not the chain's.
The kernel's packet work (softirq: loopback, bridges, taps) is charged by the tick to the
process it interrupts (this kernel has no IRQ time accounting), so most of it is already in the
roles; `softirq_cores` says how much of it there was, for information, and is not added again.

The bound: a chain whose stages cost c_i CPU-seconds per unit, when the cores are the limit,
moves at most  cores / sum(c_i)  units per second (every unit passes every stage, and the
stages share the cores); a stage capped at k cores (wrk -t1: one thread) also limits it to
k / c_i. `predicted` uses the cores the round really had: cores minus steal minus other.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
Sampler = Callable[[], float]  # cumulative CPU seconds of a role, read now


def _stat_fields(pid: int | str) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (field 3 is index 0); None when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def process_seconds(pid: int, children: bool = True) -> float:
    """utime + stime of the whole process (+ cutime + cstime, its reaped children); 0 if gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def descendants(roots: Iterable[int]) -> set[int]:
    """The live processes below `roots` (not the roots), from every process's parent pid."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(entry)
            if fields is not None:
                parent[int(entry)] = int(fields[1])
    found: set[int] = set()
    frontier = set(roots)
    while frontier:
        frontier = {pid for pid, ppid in parent.items() if ppid in frontier} - found
        found |= frontier
    return found


def all_processes() -> dict[int, tuple[str, float]]:
    """(command name, CPU seconds without reaped children) of every process now."""
    out: dict[int, tuple[str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        out[int(entry)] = (text[text.index("(") + 1:text.rindex(")")],
                           (int(fields[11]) + int(fields[12])) / TICK)
    return out


def of_pids(*pids: int) -> Sampler:
    """A role made of these processes and whatever they start."""
    def sample() -> float:
        tree = set(pids) | descendants(pids)
        return sum(process_seconds(pid) for pid in tree)
    return sample


def of_processes(*pids: int) -> Sampler:
    """These processes alone, not what they started (a node whose guests have roles of their
    own)."""
    return lambda: sum(process_seconds(pid, children=False) for pid in pids)


def of_self() -> Sampler:
    """This process alone (its threads: e.g. bench/mesh.py's sender and receiver), not the
    processes it started, which have roles of their own."""
    return lambda: process_seconds(os.getpid(), children=False)


def reaped_children() -> Sampler:
    """Children of this process that exited and were waited for: a short-lived tool run once
    per round (wrk), whose pid is gone by the time the round ends."""
    def sample() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime
    return sample


@dataclass(frozen=True)
class Machine:
    """Whole-machine jiffies from /proc/stat's first line."""

    busy: int  # user + nice + system + irq + softirq (not idle, iowait, steal)
    softirq: int
    steal: int
    total: int

    @classmethod
    def read(cls) -> Machine:
        with open("/proc/stat") as stat:
            v = [int(x) for x in stat.readline().split()[1:]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = v[:8]
        return cls(user + nice + system + irq + softirq, irq + softirq, steal, sum(v[:8]))


@dataclass
class Round:
    """CPU seconds per role over one round, with the machine's share of the wall time."""

    wall_s: float
    roles: dict[str, float]
    watched: dict[str, float]  # CPU seconds of processes watched but not on the chain
    softirq_s: float
    steal_s: float
    other_s: float
    busy: float  # fraction of all cores busy (steal counted as busy: not ours to use)
    top: list[tuple[str, float]] = field(default_factory=list)  # busiest processes, CPU-s

    def per_unit(self, units: float, scale: float = 1.0) -> dict[str, float]:
        """CPU seconds (times `scale`) per unit moved, per role: the chain's costs."""
        units = max(units, 1e-9)
        return {role: round(s * scale / units, 3) for role, s in self.roles.items()}

    def cores_left(self) -> float:
        """Cores the chain had: all of them but what steal, watched and other processes took."""
        wall = max(self.wall_s, 1e-9)
        taken = self.steal_s + self.other_s + sum(self.watched.values())
        return max(CORES - taken / wall, 0.0)

    def summary(self) -> dict[str, float]:
        wall = max(self.wall_s, 1e-9)
        return {"busy": self.busy, "wall_s": round(self.wall_s, 2),
                **{f"{name}_cores": round(s / wall, 2) for name, s in self.watched.items()},
                "other_cores": round(self.other_s / wall, 2),
                "steal_cores": round(self.steal_s / wall, 2),
                "softirq_cores": round(self.softirq_s / wall, 2),
                "cores_left": round(self.cores_left(), 2),
                "top_processes": {f"{name}#{n}": round(s / wall, 2)
                                  for n, (name, s) in enumerate(self.top)}}


@dataclass
class Account:
    """Samples every role and the machine at start() and stop(). `watch`: processes that are
    not on the chain but whose share of `other` is worth naming (the lab's nodes, idle guests)."""

    roles: dict[str, Sampler]
    watch: dict[str, Sampler] = field(default_factory=dict)
    _roles0: dict[str, float] = field(default_factory=dict)
    _watch0: dict[str, float] = field(default_factory=dict)
    top: int = 0  # name the `top` busiest processes of the round (a /proc scan each end)
    _machine0: Machine | None = None
    _t0: float = 0.0
    _procs0: dict[int, tuple[str, float]] = field(default_factory=dict)

    def start(self) -> None:
        self._procs0 = all_processes() if self.top else {}
        self._machine0 = Machine.read()
        self._t0 = time.monotonic()
        self._roles0 = {role: sample() for role, sample in self.roles.items()}
        self._watch0 = {name: sample() for name, sample in self.watch.items()}

    def stop(self) -> Round:
        used = {role: round(max(sample() - self._roles0[role], 0.0), 3)
                for role, sample in self.roles.items()}
        watched = {name: round(max(sample() - self._watch0[name], 0.0), 3)
                   for name, sample in self.watch.items()}
        wall = time.monotonic() - self._t0
        after, before = Machine.read(), self._machine0
        assert before is not None, "stop() before start()"
        busy_s = (after.busy - before.busy) / TICK
        softirq_s = (after.softirq - before.softirq) / TICK
        steal_s = (after.steal - before.steal) / TICK
        total = after.total - before.total
        other = max(busy_s - sum(used.values()) - sum(watched.values()), 0.0)
        busiest: list[tuple[str, float]] = []
        if self.top:
            now = all_processes()
            spent = [(name, cpu - self._procs0[pid][1]) for pid, (name, cpu) in now.items()
                     if pid in self._procs0]
            busiest = sorted(spent, key=lambda item: -item[1])[:self.top]
        return Round(wall, used, watched, round(softirq_s, 3), round(steal_s, 3), round(other, 3),
                     round((after.busy - before.busy + after.steal - before.steal) / total, 2)
                     if total else 0.0, busiest)


def bound(costs: dict[str, float], cores: float = CORES,
          caps: dict[str, float] | None = None) -> float | None:
    """Units per second the chain can reach when the CPU is the limit: cores / sum(costs),
    and no more than cap / cost for a stage limited to `cap` cores. Costs in CPU-s per unit."""
    total = sum(costs.values())
    if total <= 0:
        return None
    limits = [cores / total]
    limits += [cap / costs[role] for role, cap in (caps or {}).items() if costs.get(role)]
    return min(limits)


def scaled_bound(costs: dict[str, float], scale: float, cores: float = CORES,
                 caps: dict[str, float] | None = None) -> float | None:
    """bound() for costs given in CPU-s * `scale` per unit (ms per Mbit: scale 1000)."""
    got = bound({r: c / scale for r, c in costs.items()}, cores, caps)
    return None if got is None else round(got, 1)
