"""Re-placement on a lab, measured from outside the nodes: which host really runs an instance
(a VMM process in that host's network namespace, not what any store says), how long a power
cut of its host takes to have it Running elsewhere, and for how long two hosts ran it at once.

For bench/fleet.py (`measure`) and for the lab tests of self-replication, which assert on the
same observations. Every figure comes from sampling the hosts' processes and their APIs, so it
holds whatever the nodes believe.

- replace_after_kill_s: `lab kill` of the host running it -> a surviving host's API shows it
  Running on another host while that host has its VMM process.
- guest_boot_s: of that, from the first sample that found the new VMM process to Running
  (the guest's own boot, plus at most one sampling interval).
- double_run_seconds: over the whole kill/restart cycle, the sampled time during which VMM
  processes for it existed on more than one host (target 0).

The lab must hold the instance's image on more than the host that is killed (import it on
every host, as tests/integration/fleet/replace_lab.py does), or the new host cannot fetch it.
Usage: `await measure(lab, "web", instance_id)` once `web` runs exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from formation.api import vm_models as vm
from formation.api import vm_routes
from formation.api.client import ApiError
from formation.lab import Lab
from formation.lab.names import NETNS_DIR
from formation.lab.processes import processes_in_namespaces
from formation.node.vmm.workdir import NAME_HEX

SAMPLE_S = 0.05
VMM_BINARIES = (b"qemu-system", b"cloud-hypervisor")


def vmm_pids(lab: Lab, host: str, instance: str) -> list[int]:
    """The VMM processes (QEMU or Cloud Hypervisor) of `instance` living in `host`'s network
    namespace: the host's own truth, whatever its node service says or whether it runs."""
    mark = instance[:12].encode()
    found = []
    for pid in processes_in_namespaces([NETNS_DIR / lab.host(host).netns]):
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes()
            if mark in argv and any(b in argv.split(b"\0", 1)[0] for b in VMM_BINARIES):
                found.append(pid)
    return found


def running_on(lab: Lab, instance: str, hosts: list[str] | None = None) -> dict[str, list[int]]:
    """host -> its VMM pids for `instance`, only hosts that run it."""
    names = hosts if hosts is not None else [h.name for h in lab.hosts]
    found = {h: vmm_pids(lab, h, instance) for h in names}
    return {h: pids for h, pids in found.items() if pids}


def workdir_of(lab: Lab, host: str, instance: str) -> Path:
    """The instance's directory in the host's default VM run directory (data_dir/vms)."""
    return lab.names.host_dir(lab.host(host).index) / "data" / "vms" / instance[:NAME_HEX]


async def instance(lab: Lab, host: str, name: str) -> vm.Instance | None:
    """`name` as `host`'s API shows it (None when it lists no such instance, or its VM part
    is still starting: 503 right after `lab start`)."""
    async with lab.client(host) as client:
        try:
            listed = await client.call(vm_routes.vm_list)
        except ApiError as exc:
            if exc.status != 503:
                raise
            return None
    return next((i for i in listed.instances if i.name == name), None)


async def running_once(lab: Lab, name: str, instance_id: str,
                       hosts: list[str]) -> str | None:
    """The host running `name`, when every host in `hosts` shows it Running on that host and
    exactly one host of the lab has a VMM process for it (that same host); else None."""
    views = [await instance(lab, h, name) for h in hosts]
    nodes = {v.node_name if v is not None and v.state == "running" else None for v in views}
    if len(nodes) != 1 or None in nodes:
        return None
    real = await asyncio.to_thread(running_on, lab, instance_id)
    [node] = nodes
    return node if list(real) == [node] and len(real[node]) == 1 else None


@dataclass
class DoubleRunWatch:
    """Samples every host's processes for one instance in a thread; `seconds` is the time
    during which more than one host ran it, `hosts_seen` every host that ran it."""

    lab: Lab
    instance: str
    seconds: float = 0.0
    samples: int = 0
    hosts_seen: set[str] = field(default_factory=set)
    first_seen: dict[str, float] = field(default_factory=dict)  # host -> monotonic
    _task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> DoubleRunWatch:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        last = time.monotonic()
        while True:
            hosts = await asyncio.to_thread(running_on, self.lab, self.instance)
            now = time.monotonic()
            for host in hosts:
                self.first_seen.setdefault(host, now)
            if len(hosts) > 1:
                self.seconds += now - last
            self.hosts_seen |= set(hosts)
            self.samples += 1
            last = now
            await asyncio.sleep(SAMPLE_S)


async def replaced(lab: Lab, name: str, instance_id: str, lost: str,
                   timeout_s: float) -> tuple[str, float, float]:
    """Waits until a host other than `lost` runs `name` (its VMM process there, and a
    surviving host's API says Running on it). Returns (host, when its VMM process was first
    seen, when Running was seen), monotonic."""
    survivors = [h.name for h in lab.hosts if h.name != lost]
    deadline = time.monotonic() + timeout_s
    process_at: dict[str, float] = {}
    last: object = None
    while time.monotonic() < deadline:
        real = await asyncio.to_thread(running_on, lab, instance_id, survivors)
        now = time.monotonic()
        for host in real:
            process_at.setdefault(host, now)
        seen = await instance(lab, survivors[0], name)
        last = (seen.state, seen.node_name, seen.reason) if seen is not None else None
        if seen is not None and seen.state == "running" and seen.node_name in real:
            return seen.node_name, process_at[seen.node_name], time.monotonic()
        await asyncio.sleep(SAMPLE_S)
    raise TimeoutError(f"{name} not running on another host than {lost} within "
                       f"{timeout_s:g} s (last seen: {last})")


async def settled_after_restart(lab: Lab, name: str, instance_id: str, restarted: str,
                                timeout_s: float) -> str:
    """After `restarted` came back: waits until it has caught up (its API shows `name`
    Running on another host) and its reconciler has acted on that (the instance's directory
    there is gone: it does so before starting anything), then returns the host running it
    exactly once."""
    hosts = [h.name for h in lab.hosts]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen = await instance(lab, restarted, name)
        gone = not await asyncio.to_thread(os.path.exists, workdir_of(lab, restarted,
                                                                      instance_id))
        if seen is not None and seen.node_name not in (None, restarted) and gone:
            host = await running_once(lab, name, instance_id, hosts)
            if host is not None:
                return host
        await asyncio.sleep(SAMPLE_S * 4)
    raise TimeoutError(f"{restarted} back: {name} not settled on one other host within "
                       f"{timeout_s:g} s")


async def measure(lab: Lab, name: str, instance_id: str, timeout_s: float = 60.0) -> dict:
    """One kill/restart cycle of the host running `name` (Running exactly once before):
    {replace_after_kill_s, guest_boot_s, double_run_seconds, lost, moved_to}."""
    hosts = [h.name for h in lab.hosts]
    lost = await running_once(lab, name, instance_id, hosts)
    if lost is None:
        raise RuntimeError(f"{name} is not running exactly once before the kill")
    async with DoubleRunWatch(lab, instance_id) as watch:
        killed_at = time.monotonic()
        await asyncio.to_thread(lab.kill, lost)
        moved_to, process_at, running_at = await replaced(lab, name, instance_id, lost,
                                                          timeout_s)
        await asyncio.to_thread(lab.start, lost)
        await settled_after_restart(lab, name, instance_id, lost, timeout_s)
    return {"replace_after_kill_s": round(running_at - killed_at, 3),
            "guest_boot_s": round(running_at - process_at, 3),
            "double_run_seconds": round(watch.seconds, 3),
            "lost": lost, "moved_to": moved_to}
