"""The reconciler on the Cloud Hypervisor driver, against the CH API simulator (the suite's only
mock; no guest boots): the same desired-state lifecycle as with QEMU (create -> Running on the
first serial byte -> stop -> start -> resize -> delete), a node service restart that adopts the
VMM process, and a guest that panics at boot is Failed with the panic in its serial tail even
though Cloud Hypervisor's process lives on."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from vm_node import found, show, state_of, vm_settings
from waiting import until

from bench.support.ch_simulator import PANIC, write_wrapper
from formation.api import vm_models as vm
from formation.api import vm_routes
from formation.api.client import NodeClient
from formation.config.settings import NodeSettings
from formation.node.parts import build_parts
from formation.node.service import NodeService
from formation.node.vmm.cloud_hypervisor import CloudHypervisorDriver
from formation.node.vmm.component import VmmComponent


def _node(settings: NodeSettings, binary: Path) -> NodeService:
    parts = build_parts(settings)
    parts.vmm = VmmComponent(parts.state, parts.p2p, parts.images,
                             driver=CloudHypervisorDriver(str(binary)))
    return NodeService(settings, parts=parts)


async def _is(client: NodeClient, ref: str, state: str) -> bool:
    return await state_of(client, ref) == state


async def _typed_on_console(settings: NodeSettings, ref: str) -> bytes:
    """Types a line into `vm console`'s WebSocket; what came back (the simulator's hvc0 echoes
    like a terminal, from CH's console socket)."""
    received: list[bytes] = []
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(
            path=str(settings.api.socket))) as session:
        async with session.ws_connect(f"http://node/v1/vms/{ref}/console") as ws:

            async def echoed() -> bool:
                await ws.send_bytes(b"CONSOLE-TYPED\n")
                try:
                    msg = await ws.receive(timeout=2)
                except TimeoutError:
                    return False
                if msg.type == aiohttp.WSMsgType.BINARY:
                    received.append(msg.data)
                return b"CONSOLE-TYPED" in b"".join(received)

            await until(echoed, 20, every_s=0.2, what="the console socket answering")
    return b"".join(received)


def _simulators(inst_id: str) -> list[int]:
    found_pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"ch_simulator" in cmdline and inst_id[:16].encode() in cmdline:
                found_pids.append(int(entry.name))
    return found_pids


async def test_lifecycle_on_the_ch_simulator(short_tmp: Path) -> None:
    settings = vm_settings(short_tmp, vmm={"stop_grace_s": 0.5})
    binary = write_wrapper(short_tmp / "bin")
    kernel = short_tmp / "vmlinux"
    kernel.write_bytes(b"\x7fELF simulated kernel" * 32)
    node = _node(settings, binary)
    parts = node.parts
    assert parts is not None
    await node.start()
    try:
        async with NodeClient.unix(settings.api.socket) as client:
            await found(client, node)
            await client.call(vm_routes.image_import, vm.ImageImport(name="sim",
                                                                     kernel=str(kernel)))
            made = await client.call(vm_routes.vm_create, vm.VmCreate(image="sim", name="s1"))
            await until(lambda: _is(client, "s1", "running"), 30, what="s1 running")
            assert (await show(client, "s1")).instance.backend == "cloud-hypervisor"
            assert b"CONSOLE-TYPED" in await _typed_on_console(settings, "s1")
            await client.call(vm_routes.vm_stop, vm.VmStop(force=True), instance="s1")
            await until(lambda: _is(client, "s1", "stopped"), 30, what="s1 stopped")
            await client.call(vm_routes.vm_start, instance="s1")
            await until(lambda: _is(client, "s1", "running"), 30, what="s1 running again")
            await client.call(vm_routes.vm_resize, vm.VmResize(memory_mb=1024), instance="s1")

            async def resized() -> bool:
                store = parts.state.require_store()
                inst = next(i for i in await store.view("instances") if i["key"] == made.id)
                obs = inst.get("observed") or {}
                return obs.get("state") == "running" and obs.get("memory_mb") == 1024

            await until(resized, 30, what="s1 running with 1024 MiB")
            panicked = await client.call(vm_routes.vm_create, vm.VmCreate(
                image="sim", name="p1", cmdline=f"console=ttyS0 {PANIC}"))
            await until(lambda: _is(client, "p1", "failed"), 30, what="p1 failed")
            tail = (await show(client, panicked.id)).instance.serial_tail
            assert any("Kernel panic" in line for line in tail), tail
            states = [c.state for c in (await show(client, "s1")).history]
            running_reports = states.count("running")
    finally:
        await node.stop()

    assert len(_simulators(made.id)) == 1  # the VMM outlives the node service
    node = _node(settings, binary)
    vmm = node.parts.vmm if node.parts is not None else None
    assert vmm is not None
    await node.start()
    try:
        async with NodeClient.unix(settings.api.socket) as client:
            await until(lambda: vmm.reconciler is not None
                        and made.id in vmm.reconciler.running, 30,
                        what="the simulated VM adopted")
            assert await state_of(client, "s1") == "running"
            assert [c.state for c in (await show(client, "s1")).history].count("running") \
                == running_reports  # adopted, not booted again, nothing written twice
            await client.call(vm_routes.vm_delete, instance="s1")
            await until(lambda: _simulators(made.id) == [], 30, what="its VMM ended")
    finally:
        await node.stop()
