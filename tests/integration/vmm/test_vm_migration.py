"""Live migration between two real node services on this host (QEMU/TCG, over loopback TCP:
vmm.migration_address 127.0.0.1), driven only through the API: a guest printing a counter on
serial every 100 ms moves from a to b and back by drain; the counter never restarts and b's
serial log continues a's; progress is on the event stream; impossible moves are refused with
one line before anything is written."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from vm_node import found, running_node, show, vm_settings, vmm_processes
from waiting import until

from bench.support.guest_kit import COUNTER, GUEST_UP, GuestKit
from bench.support.migration_probe import CounterClock
from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api import vm_models as vm
from formation.api import vm_routes
from formation.api.client import ApiError, NodeClient
from formation.identity import load_or_create_identity
from formation.node.service import NodeService
from formation.node.vmm import workdir
from tests.ports import free_port

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(400)]
BOOT_S = 90


@dataclass
class Host:
    service: NodeService
    client: NodeClient

    @property
    def key(self) -> str:
        assert self.service.identity is not None
        return self.service.identity.public_key_hex

    def serial_log(self, inst_id: str) -> Path:
        return self.service.settings.data_dir / "vms" / inst_id[:16] / workdir.SERIAL


class Recorder:
    """Keeps the last counters seen in a serial log: the source removes its copy's directory
    once the target runs the guest, so the test remembers what it printed."""

    def __init__(self, path: Path) -> None:
        self.path, self.seen = path, []
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            now = counters(self.path)
            if len(now) > len(self.seen):
                self.seen = now
            await asyncio.sleep(0.02)

    def stop(self) -> list[int]:
        self.task.cancel()
        return self.seen


def counters(path: Path) -> list[int]:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return []
    return [int(n) for n in re.findall(rf"^{COUNTER}(\d+)\r?$", text, re.M)]


@pytest.fixture
async def hosts(short_tmp: Path) -> AsyncIterator[tuple[Host, Host]]:
    ports = [free_port(), free_port()]
    keys = [load_or_create_identity(short_tmp / n / "data").public_key_hex for n in "ab"]
    settings = [vm_settings(
        short_tmp / n, name=n,
        api={"socket": str(short_tmp / f"{n}.sock"), "listen": f"127.0.0.1:{ports[i]}"},
        trusted_keys=[keys[1 - i]], bootstrap=[f"127.0.0.1:{ports[1 - i]}"],
        state={"peers": [f"{keys[1 - i]}@127.0.0.1:{ports[1 - i]}"],
               "anti_entropy_interval_s": 0.2},
        vmm={"migration_address": "127.0.0.1"}) for i, n in enumerate("ab")]
    async with running_node(settings[0]) as a, running_node(settings[1]) as b, \
            NodeClient.unix(settings[0].api.socket) as ca, \
            NodeClient.unix(settings[1].api.socket) as cb:
        yield Host(a, ca), Host(b, cb)


async def _admit(a: Host, b: Host) -> None:
    await a.client.call(sr.state_append, sm.AppendRequest(
        kind="node.admit", payload={"node": b.key, "roles": ["member"]}))

    async def b_recorded() -> bool:
        view = await a.client.call(sr.state_view, collection="nodes")
        return any(n["key"] == b.key and n.get("resources") for n in view.items)

    await until(b_recorded, 60, what="b's record with its resources on a")
    await until(lambda: a.service.parts is not None
                and b.key in a.service.parts.vmm.live_members(), 60, what="b live on a")


async def _placed_on(host: Host, ref: str, key: str) -> bool:
    inst = (await show(host.client, ref)).instance
    return inst.node == key and inst.state == "running"


async def test_a_counter_guest_moves_live_and_back_by_drain(hosts, guest_kit: GuestKit) -> None:
    a, b = hosts
    await found(a.client, a.service)
    await a.client.call(vm_routes.image_import, vm.ImageImport(
        name="counter", kernel=str(guest_kit.kernel), initrd=str(guest_kit.initrd),
        cmdline=f"{guest_kit.cmdline} formation.counter"))
    created = await a.client.call(vm_routes.vm_create, vm.VmCreate(image="counter", name="c1"))
    inst_id = created.id
    await until(lambda: len(counters(a.serial_log(inst_id))) >= 10, BOOT_S,
                what="the counter on a")
    await _admit(a, b)

    # refusals: one line, nothing written
    before = (await a.client.call(sr.state_status)).ops
    for body, message in ((vm.VmMigrate(to="a"), "to: c1 already runs on a"),
                          (vm.VmMigrate(to="nowhere"), "node: no node named nowhere")):
        with pytest.raises(ApiError) as exc:
            await a.client.call(vm_routes.vm_migrate, body, instance="c1")
        assert exc.value.body.message.startswith(message), exc.value.body.message
        assert "\n" not in exc.value.body.message
    assert (await a.client.call(sr.state_status)).ops == before

    events = a.service.bus.subscribe("vm", since=0)
    recorder = Recorder(a.serial_log(inst_id))
    clock = CounterClock()  # the bench's measure: the longest gap in the counter
    clock.watch(a.serial_log(inst_id))
    clock.watch(b.serial_log(inst_id))
    await clock.until_count(0, 10)
    start = clock.last()
    move = await a.client.call(vm_routes.vm_migrate, vm.VmMigrate(to="b"), instance="c1")
    assert (move.mode, move.to) == ("live", b.key)
    await until(lambda: _placed_on(a, "c1", b.key), BOOT_S, what="c1 running on b")
    await until(lambda: vmm_processes(inst_id) and len(vmm_processes(inst_id)) == 1, 30,
                what="one QEMU for c1 (a's ended)")
    await until(lambda: len(counters(b.serial_log(inst_id))) >= 10, 30,
                what="the counter on b")
    on_a, on_b = recorder.stop(), counters(b.serial_log(inst_id))
    gap_ms = clock.longest_gap_ms(start)
    clock.stop()
    print(f"migration a->b: longest counter gap {gap_ms} ms")
    assert gap_ms < 5000, gap_ms  # TCG on a loaded 2-core machine: generous
    assert not a.serial_log(inst_id).parent.exists()  # a's copy ended, its files removed
    # b continues a's count: it never restarts from 0
    assert on_b[0] > 0 and 0 < on_b[0] - on_a[-1] <= 30, (on_a[-3:], on_b[:3])
    assert on_b == sorted(on_b)
    kinds = []
    while not events.queue.empty():
        event = events.queue.get_nowait()
        kinds.append(event.kind)
        if event.kind == "migration_progress":
            assert {"transferred_bytes", "remaining_bytes", "dirty_rate_pps"} <= set(event.data)
    assert "migration_started" in kinds and "migration_done" in kinds, kinds
    assert "migration_progress" in kinds
    history = [(c.state, c.reason) for c in (await show(a.client, "c1")).history]
    assert ("booting", "live migration in progress") in history, history

    # drain b: c1 goes back to a, live, still counting on
    recorder = Recorder(b.serial_log(inst_id))
    drained = await a.client.call(vm_routes.node_drain, vm.NodeDrain(), node="b")
    assert [(mv.name, mv.to, mv.mode) for mv in drained.moves] == [("c1", a.key, "live")]
    await until(lambda: _placed_on(a, "c1", a.key), BOOT_S, what="c1 back on a")
    await until(lambda: len(counters(a.serial_log(inst_id))) >= 5, 30,
                what="a counting again")
    on_b, again = recorder.stop(), counters(a.serial_log(inst_id))
    assert 0 < again[0] - on_b[-1] <= 30, (on_b[-3:], again[:3])
    assert len(vmm_processes(inst_id)) == 1


async def test_a_vm_with_a_disk_moves_only_by_restart(hosts, guest_kit: GuestKit) -> None:
    """An image with a disk cannot move live: refused with the reason and nothing written;
    --restart stops it on a and boots it on b."""
    a, b = hosts
    await found(a.client, a.service)
    await a.client.call(vm_routes.image_import, vm.ImageImport(
        name="disky", kernel=str(guest_kit.kernel), initrd=str(guest_kit.initrd),
        disk=str(guest_kit.disk), cmdline=guest_kit.cmdline))
    created = await a.client.call(vm_routes.vm_create, vm.VmCreate(image="disky", name="d1"))
    await until(lambda: _placed_on(a, "d1", a.key), BOOT_S, what="d1 running on a")
    await _admit(a, b)
    before = (await a.client.call(sr.state_status)).ops
    with pytest.raises(ApiError) as exc:
        await a.client.call(vm_routes.vm_migrate, vm.VmMigrate(to="b"), instance="d1")
    message = exc.value.body.message
    assert exc.value.status == 422 and message.startswith("d1: cannot move live: its image "
                                                          "has a disk"), message
    assert "--restart" in message and "\n" not in message
    assert (await a.client.call(sr.state_status)).ops == before
    move = await a.client.call(vm_routes.vm_migrate, vm.VmMigrate(to="b", restart=True),
                               instance="d1")
    assert move.mode == "restart"
    await until(lambda: _placed_on(a, "d1", b.key), BOOT_S, what="d1 running on b")
    await until(lambda: GUEST_UP in _text(b.serial_log(created.id)), BOOT_S,
                what="d1 booted on b")
    await until(lambda: len(vmm_processes(created.id)) == 1, 30, what="a's copy ended")


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
