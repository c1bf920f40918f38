"""The instance lifecycle on one real node with real QEMU/TCG guests, driven only through the API
(desired state): create -> Running (the guest's marker on serial) -> stop -> start -> resize ->
a node service restart that adopts the running VM (one QEMU process, no new boot) -> delete.
And a guest that cannot boot shows Failed with its serial tail."""

from __future__ import annotations

from pathlib import Path

import pytest
from vm_node import found, running_node, serial_text, show, state_of, vm_settings, vmm_processes
from waiting import until

from bench.support.guest_kit import BROKEN_MARKER, GUEST_UP, GuestKit
from formation.api import vm_models as vm
from formation.api import vm_routes
from formation.api.client import NodeClient

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(300)]

BOOT_S = 90  # TCG boots the kit in ~2 s alone; a loaded 2-core machine takes much longer


async def _import(client: NodeClient, kit: GuestKit, name: str, broken: bool = False) -> None:
    await client.call(vm_routes.image_import, vm.ImageImport(
        name=name, kernel=str(kit.kernel),
        initrd=str(kit.broken_initrd if broken else kit.initrd),
        disk=None if broken else str(kit.disk), cmdline=kit.cmdline))


async def _running_with_marker(client: NodeClient, ref: str) -> bool:
    return await state_of(client, ref) == "running" and GUEST_UP in await serial_text(client, ref)


async def test_lifecycle_create_stop_start_resize_adopt_delete(short_tmp: Path,
                                                               guest_kit: GuestKit) -> None:
    settings = vm_settings(short_tmp)
    async with running_node(settings) as node, NodeClient.unix(settings.api.socket) as client:
        await found(client, node)
        await _import(client, guest_kit, "guest")
        created = await client.call(vm_routes.vm_create, vm.VmCreate(image="guest", name="t1"))
        assert created.name == "t1" and created.image_name == "guest"
        await until(lambda: _running_with_marker(client, "t1"), BOOT_S,
                    what="t1 running with the guest's marker on serial")
        inst_id = created.id
        assert len(vmm_processes(inst_id)) == 1
        listed = await client.call(vm_routes.vm_list)
        assert [i.state for i in listed.instances if i.name == "t1"] == ["running"]

        await client.call(vm_routes.vm_stop, vm.VmStop(), instance="t1")
        await until(lambda: _is(client, "t1", "stopped"), 60, what="t1 stopped")
        assert vmm_processes(inst_id) == []

        await client.call(vm_routes.vm_start, instance=inst_id[:10])  # an id prefix
        await until(lambda: _is(client, "t1", "running"), BOOT_S, what="t1 running again")

        resized = await client.call(vm_routes.vm_resize, vm.VmResize(vcpus=2, memory_mb=768),
                                    instance="t1")
        assert (resized.vcpus, resized.memory_mb) == (2, 768)
        await until(lambda: _observed_size(node, inst_id, (2, 768)), BOOT_S,
                    what="t1 running at its new size")
        history_before = len((await show(client, "t1")).history)

    # the node service stops (its VMs keep running) and starts again: it adopts the VM
    assert len(vmm_processes(inst_id)) == 1
    async with running_node(settings) as node, NodeClient.unix(settings.api.socket) as client:
        await until(lambda: node.parts is not None and node.parts.vmm.reconciler is not None
                    and inst_id in node.parts.vmm.reconciler.running, 60,
                    what="the running VM adopted")
        assert len(vmm_processes(inst_id)) == 1
        assert await state_of(client, "t1") == "running"
        assert len((await show(client, "t1")).history) == history_before  # no new boot

        await client.call(vm_routes.vm_delete, instance="t1")
        await until(lambda: vmm_processes(inst_id) == [], 30, what="the VM ended")
        run_dir = settings.data_dir / "vms" / inst_id
        await until(lambda: not run_dir.exists(), 30, what="its workdir removed")
        assert (await client.call(vm_routes.vm_list)).instances == []


async def _is(client: NodeClient, ref: str, state: str) -> bool:
    return await state_of(client, ref) == state


async def _observed_size(node, inst_id: str, size: tuple[int, int]) -> bool:
    store = node.parts.state.require_store()
    inst = next(i for i in await store.view("instances") if i["key"] == inst_id)
    observed = inst.get("observed") or {}
    return (observed.get("state") == "running"
            and (observed.get("vcpus"), observed.get("memory_mb")) == size)


async def test_a_guest_that_cannot_boot_is_failed_with_its_serial_tail(
        short_tmp: Path, guest_kit: GuestKit) -> None:
    settings = vm_settings(short_tmp)
    async with running_node(settings) as node, NodeClient.unix(settings.api.socket) as client:
        await found(client, node)
        await _import(client, guest_kit, "broken", broken=True)
        created = await client.call(vm_routes.vm_create, vm.VmCreate(image="broken"))
        await until(lambda: _is(client, created.id, "failed"), BOOT_S, what="failed")
        inst = (await show(client, created.id)).instance
        assert inst.reason
        assert any(BROKEN_MARKER in line or "panic" in line.lower()
                   for line in inst.serial_tail), inst.serial_tail
        assert vmm_processes(created.id) == []
        # failed stays failed (no boot loop) until its desired state changes
        states = [c.state for c in (await show(client, created.id)).history]
        assert states.count("booting") == 1
