"""Live migration on a lab, measured from the guest's own output: a guest printing "COUNTER n"
on serial every 100 ms is moved between two hosts, and the longest wall-clock gap between
consecutive counter values (read from the source's then the target's serial log as they grow)
is the downtime the guest saw, plus at most one 100 ms tick.

- migration_downtime_ms: that gap for `formation vm migrate NAME --to HOST` (the node's way:
  desired placement, the target claims with its listener, the source migrates).
- bare_downtime_ms: the same migration done by bare QEMU commands between the same two hosts'
  namespaces in the same run (the same command line the driver builds, -incoming on the
  target's mesh address, QMP migrate-set-parameters + migrate + query-migrate by hand).
- migration_ratio: migration_downtime_ms / bare_downtime_ms (target <= 1.2).

For bench/fleet.py (`measure(fleet)`); every figure comes from the serial logs, whatever the
nodes report."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

from formation.api import vm_models as vm
from formation.api import vm_routes
from formation.node.vmm import qemu_args
from formation.node.vmm.machine import MachineSpec
from formation.node.vmm.qemu import MIGRATION_PARAMETERS, incoming_args

COUNTER_RE = re.compile(rb"^COUNTER (\d+)\r?$", re.M)
WATCH_S = 0.005
IMAGE = "counter"
TIMEOUT_S = 120.0


class CounterClock:
    """When each counter value first appeared in any of the watched serial logs."""

    def __init__(self) -> None:
        self.first_seen: dict[int, float] = {}
        self._offsets: dict[Path, int] = {}
        self._task: asyncio.Task[None] | None = None
        self.paths: list[Path] = []

    def watch(self, path: Path) -> None:
        self.paths.append(path)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            now = time.monotonic()
            for path in self.paths:
                self._read(path, now)
            await asyncio.sleep(WATCH_S)

    def _read(self, path: Path, now: float) -> None:
        try:
            with path.open("rb") as f:
                f.seek(self._offsets.get(path, 0))
                data = f.read()
        except OSError:
            return
        end = data.rfind(b"\n") + 1  # whole lines only
        self._offsets[path] = self._offsets.get(path, 0) + end
        for match in COUNTER_RE.finditer(data[:end]):
            self.first_seen.setdefault(int(match.group(1)), now)

    async def until_count(self, above: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while max(self.first_seen, default=-1) <= above:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the serial counter did not pass {above} in {timeout_s:g} s")
            await asyncio.sleep(0.05)

    def last(self) -> int:
        return max(self.first_seen, default=-1)

    def longest_gap_ms(self, start: int) -> float:
        """The longest gap between consecutive values from `start` on; a value never seen
        (lost in a restart) counts from the previous one seen."""
        values = sorted(n for n in self.first_seen if n >= start)
        gaps = [self.first_seen[b] - self.first_seen[a] for a, b in itertools.pairwise(values)]
        return round(max(gaps, default=0.0) * 1000, 1)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


async def _import_counter_image(fleet: Any) -> None:
    """A disk-less image of the test guest whose cmdline starts the counter (an image with a
    disk does not move live)."""
    listed = await fleet.call("h1", vm_routes.image_list)
    if any(i.name == IMAGE for i in listed.images):
        return
    kit = fleet.kit
    await fleet.cli("h1", "image", "import", str(kit.kernel), "--initrd", str(kit.initrd),
                    "--name", IMAGE, "--cmdline", f"{kit.cmdline} formation.counter", "--json",
                    timeout_s=120)


async def node_migration(fleet: Any) -> dict[str, Any]:
    """`vm migrate` of an unpinned counter guest from the host it landed on to another."""
    await _import_counter_image(fleet)
    inst = await fleet.call("h1", vm_routes.vm_create, vm.VmCreate(
        image=IMAGE, name="mover", memory_mb=512))
    where = await fleet.running("mover", addressed=False)
    source = str(where["node_name"])
    target = next(h for h in ("h3", "h1", "h2") if h != source)
    clock = CounterClock()
    clock.watch(fleet.serial_log(source, inst.id))
    clock.watch(fleet.serial_log(target, inst.id))
    try:
        await clock.until_count(10, TIMEOUT_S)
        start = clock.last()
        began = time.monotonic()
        await fleet.call("h1", vm_routes.vm_migrate, vm.VmMigrate(to=target), instance="mover")
        await fleet.running("mover", host=target, addressed=False)
        await clock.until_count(clock.last() + 10, TIMEOUT_S)
        took = time.monotonic() - began
        gap = clock.longest_gap_ms(start)
    finally:
        clock.stop()
        with contextlib.suppress(Exception):
            await fleet.delete("mover")
    return {"migration_downtime_ms": gap, "migration_total_s": round(took, 2),
            "migration_hosts": [source, target]}


async def _qmp(socket: Path, commands: list[tuple[str, dict[str, Any] | None]]) -> list[Any]:
    from qemu.qmp import QMPClient

    client = QMPClient("migration-probe")
    await asyncio.wait_for(client.connect(str(socket)), 5)
    try:
        return [await client.execute(c, a) for c, a in commands]
    finally:
        await client.disconnect()


async def _until_socket(path: Path, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"QEMU made no QMP socket {path}")
        await asyncio.sleep(0.02)


async def bare_migration(fleet: Any, source: str, target: str, port: int = 49300
                         ) -> dict[str, Any]:
    """The same guest and command line, by hand: QEMU in the source host's namespaces, QEMU
    -incoming on the target's mesh address in the target's, QMP migrate between them."""
    kit, lab = fleet.kit, fleet.lab
    procs: list[asyncio.subprocess.Process] = []
    specs: dict[str, MachineSpec] = {}
    for host in (source, target):
        wd = lab.names.host_dir(lab.host(host).index) / "bare-migration"
        wd.mkdir(parents=True, exist_ok=True)
        for name in (qemu_args.QMP_SOCKET, qemu_args.CONSOLE_SOCKET, "serial.log"):
            (wd / name).unlink(missing_ok=True)
        specs[host] = MachineSpec(instance="b0" * 16, name=f"bare-{host}", vcpus=1,
                                  memory_mb=512, kernel=kit.kernel, initrd=kit.initrd,
                                  cmdline=f"{kit.cmdline} formation.counter", workdir=wd,
                                  serial_log=wd / "serial.log")
    listen = f"{fleet.mesh_ip(target)}:{port}"
    clock = CounterClock()
    try:
        for host, incoming in ((source, None), (target, listen)):
            args = qemu_args.qemu_args(specs[host], "qemu-system-x86_64", "tcg")
            if incoming is not None:
                args = incoming_args(args, incoming)
            full, env = lab.exec_argv(host, args)
            procs.append(await asyncio.create_subprocess_exec(
                *full, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True))
            await _until_socket(specs[host].workdir / qemu_args.QMP_SOCKET)
        src_qmp = specs[source].workdir / qemu_args.QMP_SOCKET
        await _qmp(src_qmp, [("cont", None)])
        clock.watch(specs[source].serial_log)
        clock.watch(specs[target].serial_log)
        await clock.until_count(10, TIMEOUT_S)
        start = clock.last()
        await _qmp(src_qmp, [("migrate-set-parameters", MIGRATION_PARAMETERS),
                             ("migrate", {"uri": f"tcp:{listen}"})])
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            [info] = await _qmp(src_qmp, [("query-migrate", None)])
            if info.get("status") == "completed":
                break
            if info.get("status") in ("failed", "cancelled") or time.monotonic() > deadline:
                raise RuntimeError(f"bare migration: {info.get('status')}: "
                                   f"{info.get('error-desc', '')}")
            await asyncio.sleep(0.2)
        with contextlib.suppress(Exception):  # QEMU may close before the reply is read
            await _qmp(src_qmp, [("quit", None)])
        await clock.until_count(clock.last() + 10, TIMEOUT_S)
        return {"bare_downtime_ms": clock.longest_gap_ms(start),
                "bare_qemu_downtime_ms": info.get("downtime")}
    finally:
        clock.stop()
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: nsenter and QEMU
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), 10)


async def measure(fleet: Any) -> dict[str, Any]:
    """Both migrations in one run, between the same hosts: the node's first, then bare."""
    node = await node_migration(fleet)
    source, target = node["migration_hosts"]
    bare = await bare_migration(fleet, source, target)
    ratio = None
    if bare["bare_downtime_ms"]:
        ratio = round(node["migration_downtime_ms"] / bare["bare_downtime_ms"], 2)
    return {**node, **bare, "migration_ratio": ratio}
