"""VM benchmark (issue 15): our own overhead around a guest's boot, the guest's boot through the
node against the same guest under a bare QEMU command, and lifecycle calls per second through
the Cloud Hypervisor driver against the simulator.

The guest is the test kit (bench/support/guest_kit.py: Debian's cloud kernel and a busybox
initramfs that prints GUEST_UP on its serial line). Every time comes from what the system
records, never from how often this script looks:
  - the node's event stream (topic "vm", each event stamped by the node): `create` when the
    instance.create op was applied, i.e. `vm create` accepted;
  - the instance's status history (GET /v1/vms/{id}: the op time of each status report): the
    Booting report is written right after the driver's boot call returns, Running right after
    the reconciler saw the first serial byte;
  - the serial log, watched with inotify (bench/support/serial_watch.py): its first byte and
    when GUEST_UP appeared;
  - QEMU's pid file (-pidfile, written as QEMU starts): its mtime is the VMM's start.

Keys:
  create_to_boot_call_ms       `create` event -> Booting report (target <= 20)
  first_serial_to_running_ms   first serial byte -> Running report (target <= 20)
  tcg_boot_s                   the guest's boot through the node here (TCG): the node's QEMU
                               starting -> GUEST_UP; includes the driver's QMP set-up and boot call
  qemu_direct_boot_s           the same guest (kernel, initrd, command line, machine, size)
                               under a bare qemu-system-x86_64 command: its start -> GUEST_UP
  boot_overhead_ratio          tcg_boot_s / qemu_direct_boot_s (target <= 1.1)
  lifecycle_ops_per_s          CloudHypervisorDriver calls per second (boot, info, pause,
                               resume, shutdown on one VM) against the simulator
  simulator_raw_ops_per_s      the same requests from a bare HTTP client to the same simulator
  lifecycle_overhead_ratio     lifecycle_ops_per_s / simulator_raw_ops_per_s
Medians over the rounds; bare and node boots alternate so both see the same load.

    python bench/vm.py [--quick]      (root: the node's QEMU backend; prints one JSON object)"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from support.serial_watch import SerialWatch

QEMU = "qemu-system-x86_64"
SERIAL = "serial.log"  # formation/node/vmm/workdir.py
PID_FILE = "qemu.pid"  # formation/node/vmm/qemu_args.py
VCPUS, MEMORY_MB = 1, 512
BOOT_TIMEOUT_S = 120
TARGETS = {"create_to_boot_call_ms": 20.0, "first_serial_to_running_ms": 20.0,
           "boot_overhead_ratio": 1.1}
# The machine and the TCG clock hint the QEMU driver uses (formation/node/vmm/qemu_args.py),
# so the bare command boots the very same virtual machine.
MACHINE = "microvm"
TCG_TSC = "tsc_early_khz=2000000"


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _mtime(path: Path) -> float:
    return path.stat().st_mtime


# the baseline: a bare QEMU command ------------------------------------------------------------
def bare_boot(kit: Any, marker: str, base: Path) -> float:
    """Seconds from the bare QEMU's start (its pid file) to `marker` on its serial log."""
    work = Path(tempfile.mkdtemp(prefix="bare-", dir=base))
    cmdline = kit.cmdline if "tsc_early_khz" in kit.cmdline else f"{kit.cmdline} {TCG_TSC}"
    args = [QEMU, "-accel", "tcg", "-M", MACHINE, "-cpu", "max", "-smp", str(VCPUS),
            "-m", f"{MEMORY_MB}M", "-nodefaults", "-no-user-config", "-display", "none",
            "-no-reboot", "-kernel", str(kit.kernel), "-initrd", str(kit.initrd),
            "-append", cmdline, "-serial", f"file:{work / SERIAL}",
            "-pidfile", str(work / PID_FILE)]
    try:
        with SerialWatch(work, SERIAL, (marker,)) as watch:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            try:
                log = watch.wait_marker(marker, BOOT_TIMEOUT_S)
            finally:
                proc.kill()
                proc.wait(30)
        return log.markers[marker] - _mtime(work / PID_FILE)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# the node: create -> boot call -> first byte -> Running ---------------------------------------
@contextlib.contextmanager
def vm_node(base: Path) -> Iterator[tuple[Path, Path]]:
    """A `formation node` process with the QEMU backend; yields (API socket, run dir)."""
    from support.processes import node_process

    run_dir = base / "v"  # short: QEMU's sockets in run_dir/<64 hex>/ must fit in 108 bytes
    run_dir.mkdir()
    config = base / "node.yaml"
    config.write_text(yaml.safe_dump({
        "name": "bench", "data_dir": str(base / "data"),
        "api": {"socket": str(base / "node.sock"), "listen": "127.0.0.1:0"},
        "probe": {"boot_test": False},
        "vmm": {"backend": "qemu", "run_dir": str(run_dir), "boot_timeout_s": BOOT_TIMEOUT_S},
        "resources": {"cpus": 2, "memory_mb": 2048, "disk_gb": 40}}))
    with node_process(config, ready_s=60):
        yield base / "node.sock", run_dir


async def _found_and_import(client: Any, kit: Any) -> None:
    from formation.api import state_models as sm
    from formation.api import state_routes as sr
    from formation.api import vm_models as vm
    from formation.api import vm_routes

    await client.call(sr.state_create_network, sm.CreateNetworkRequest(name="bench"))
    deadline = time.monotonic() + 60
    while True:  # placement counts nodes whose record offers resources
        view = await client.call(sr.state_view, collection="nodes")
        if any(n.get("resources") for n in view.items):
            break
        if time.monotonic() > deadline:
            raise RuntimeError("the node's record never offered its resources")
        await asyncio.sleep(0.1)
    await client.call(vm_routes.image_import, vm.ImageImport(
        name="guest", kernel=str(kit.kernel), initrd=str(kit.initrd), cmdline=kit.cmdline))


async def _collect(client: Any, into: list[Any]) -> None:
    async for event in client.events(topic="vm"):
        into.append(event)


async def node_boot(client: Any, run_dir: Path, marker: str, name: str,
                    events: list[Any]) -> dict[str, float]:
    """One instance created, timed to Running and `marker`, and deleted."""
    from formation.api import vm_models as vm
    from formation.api import vm_routes
    from formation.node.vmm.workdir import path_for

    with SerialWatch(run_dir, SERIAL, (marker,)) as watch:
        created = await client.call(vm_routes.vm_create, vm.VmCreate(
            image="guest", name=name, vcpus=VCPUS, memory_mb=MEMORY_MB))
        workdir = path_for(run_dir, created.id)
        log = await asyncio.to_thread(watch.wait_marker, marker, BOOT_TIMEOUT_S,
                                      workdir / SERIAL)
        deadline = time.monotonic() + BOOT_TIMEOUT_S
        while True:
            detail = await client.call(vm_routes.vm_show, instance=created.id)
            if detail.instance.state == "running":
                break
            if detail.instance.state == "failed" or time.monotonic() > deadline:
                raise RuntimeError(f"{name}: {detail.instance.state} {detail.instance.reason}")
            await asyncio.sleep(0.05)
        vmm_started = _mtime(workdir / PID_FILE)
        machine = _machine_of(int((workdir / PID_FILE).read_text()))
    if machine != MACHINE:  # the bare command would not boot the same VM
        raise RuntimeError(f"the node's QEMU runs a {machine} machine, the baseline {MACHINE}")
    history = {change.state: change.time.timestamp() for change in detail.history}
    accepted = next((e.time.timestamp() for e in events
                     if e.kind == "create" and e.data.get("instance") == created.id), None)
    await client.call(vm_routes.vm_delete, instance=created.id)
    deadline = time.monotonic() + 60
    while True:  # the next round starts from a node that runs nothing
        if not workdir.exists() or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert log.first_byte is not None and not log.missed_start
    if accepted is None:
        raise RuntimeError("no `create` event for the instance on the event stream")
    stages = _stages(events, created.id)
    return {"create_to_boot_call_ms": (history["booting"] - accepted) * 1000,
            "first_serial_to_running_ms": (history["running"] - log.first_byte) * 1000,
            "tcg_boot_s": log.markers[marker] - vmm_started,
            # where create_to_boot_call_ms goes, from the node's own events
            "create_to_placed_ms": (stages["place"] - accepted) * 1000,
            "placed_to_vmm_start_ms": (stages["vmm"] - stages["place"]) * 1000,
            "vmm_start_to_boot_call_ms": (history["booting"] - stages["vmm"]) * 1000}


def _machine_of(pid: int) -> str:
    """The -M argument of a running QEMU."""
    args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    return args[args.index("-M") + 1].split(",")[0] if "-M" in args else "?"


def _stages(events: list[Any], instance: str) -> dict[str, float]:
    """When the node applied the placement op and when the reconciler started the VMM."""
    found: dict[str, float] = {}
    for event in events:
        if event.data.get("instance") != instance:
            continue
        name = event.data.get("stage") if event.kind == "progress" else event.kind
        found.setdefault(str(name), event.time.timestamp())
    missing = {"place", "vmm"} - found.keys()
    if missing:
        raise RuntimeError(f"no {sorted(missing)} event for the instance on the event stream")
    return found


# Cloud Hypervisor driver against the simulator -------------------------------------------------
async def lifecycle(base: Path, cycles: int) -> dict[str, float]:
    """Driver calls per second on one simulated VM, and the same requests sent bare."""
    import aiohttp
    from support.ch_simulator import write_wrapper

    from formation.node.vmm.cloud_hypervisor import CloudHypervisorDriver
    from formation.node.vmm.machine import MachineSpec

    work = base / "ch"
    work.mkdir()
    kernel = work / "vmlinuz"
    kernel.write_bytes(b"\0" * 4096)
    driver = CloudHypervisorDriver(str(write_wrapper(work / "bin")))
    spec = MachineSpec(instance="b" * 64, name="bench", vcpus=1, memory_mb=512, kernel=kernel,
                       workdir=work / "vm", serial_log=work / "vm" / SERIAL,
                       cmdline="console=ttyS0")
    spec.workdir.mkdir()
    machine = await driver.create(spec)
    try:
        async def driver_cycle() -> int:
            await machine.boot()
            await machine.info()
            await machine.pause()
            await machine.resume()
            await machine.shutdown()
            return 5

        await driver_cycle()  # warm: connections, the simulator's first requests
        started, ops = time.perf_counter(), 0
        for _ in range(cycles):
            ops += await driver_cycle()
        driver_rate = ops / (time.perf_counter() - started)

        connector = aiohttp.UnixConnector(path=str(machine.socket))
        async with aiohttp.ClientSession(connector=connector) as http:
            async def raw(method: str, endpoint: str) -> None:
                async with http.request(method, f"http://localhost/api/v1/{endpoint}") as r:
                    await r.read()
                    if r.status >= 300:
                        raise RuntimeError(f"simulator {endpoint}: {r.status}")

            async def raw_cycle() -> int:
                for method, endpoint in (("PUT", "vm.boot"), ("GET", "vm.info"),
                                         ("PUT", "vm.pause"), ("PUT", "vm.resume"),
                                         ("PUT", "vm.shutdown")):
                    await raw(method, endpoint)
                return 5

            await raw_cycle()
            started, ops = time.perf_counter(), 0
            for _ in range(cycles):
                ops += await raw_cycle()
            raw_rate = ops / (time.perf_counter() - started)
    finally:
        await machine.destroy()
    return {"lifecycle_ops_per_s": round(driver_rate, 1),
            "simulator_raw_ops_per_s": round(raw_rate, 1),
            "lifecycle_overhead_ratio": round(driver_rate / raw_rate, 2)}


# ------------------------------------------------------------------------------------------------
async def boots(kit: Any, marker: str, base: Path, rounds: int) -> dict[str, Any]:
    from formation.api.client import NodeClient

    node: dict[str, list[float]] = {}
    bare: list[float] = []
    with vm_node(base) as (socket, run_dir):
        async with NodeClient.unix(socket, timeout_s=60) as client:
            await _found_and_import(client, kit)
            events: list[Any] = []
            collector = asyncio.get_running_loop().create_task(_collect(client, events))
            try:
                for i in range(rounds):
                    bare.append(await asyncio.to_thread(bare_boot, kit, marker, base))
                    one = await node_boot(client, run_dir, marker, f"bench-{i}", events)
                    for key, value in one.items():
                        node.setdefault(key, []).append(value)
            finally:
                collector.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await collector
    tcg, direct = _median(node["tcg_boot_s"]), _median(bare)
    return {
        "create_to_boot_call_ms": round(_median(node["create_to_boot_call_ms"]), 1),
        "create_to_boot_call_breakdown_ms": {
            key: round(_median(node[key]), 1) for key in (
                "create_to_placed_ms", "placed_to_vmm_start_ms", "vmm_start_to_boot_call_ms")},
        "first_serial_to_running_ms": round(_median(node["first_serial_to_running_ms"]), 1),
        "tcg_boot_s": round(tcg, 3),
        "qemu_direct_boot_s": round(direct, 3),
        "boot_overhead_ratio": round(tcg / direct, 3),
        "boot_rounds": rounds,
        "samples": {key: [round(v, 3) for v in node[key]] for key in (
            "create_to_boot_call_ms", "first_serial_to_running_ms", "tcg_boot_s")}
        | {"qemu_direct_boot_s": [round(v, 3) for v in bare],
           # each node boot over the bare one just before it (the same load, nearly)
           "paired_ratios": [round(a / b, 3)
                             for a, b in zip(node["tcg_boot_s"], bare, strict=True)]},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (under a minute)")
    args = parser.parse_args()
    # The serial watcher's thread stamps an inotify event once it holds the GIL: with the
    # default 5 ms switch interval, the event stream's reader could hold it that long.
    sys.setswitchinterval(0.0001)
    result: dict[str, Any] = {"accelerator": "tcg"}
    base = Path(tempfile.mkdtemp(prefix="fmvb-", dir="/tmp"))
    try:
        try:
            from support.guest_kit import GUEST_UP, Unavailable, build_guest_kit
            try:
                kit = build_guest_kit()
            except Unavailable as exc:
                raise RuntimeError(f"guest kit: {exc}") from None
            if shutil.which(QEMU) is None or os.geteuid() != 0:
                raise RuntimeError(f"needs root and {QEMU}")
            result |= asyncio.run(boots(kit, GUEST_UP, base, 2 if args.quick else 5))
        except (ImportError, RuntimeError) as exc:
            result["boots_skipped"] = str(exc)
        try:
            result |= asyncio.run(lifecycle(base, 20 if args.quick else 200))
        except ImportError as exc:
            result["lifecycle_skipped"] = str(exc)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    result["targets"] = TARGETS
    result["met"] = {key: result[key] <= target for key, target in TARGETS.items()
                     if key in result}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
