"""A removed node's mesh address is freed, on the node too: real state stores (SQLite), a real
node service running the state and mesh parts, real wireguard-go in a simulated host.

Node b founds the network and admits node a, which claims 10.42.0.1 and puts it on its
interface. b removes a: a takes the address off. b's network gives the address to another
member; when b admits a again, a does not take its old address back but claims the next free
one and puts that on its interface."""

from __future__ import annotations

from pathlib import Path

import pytest
from mesh_support import requires_mesh_tools
from settings_factory import make_settings
from waiting import wait_for

from bench.support.testbed import Testbed
from formation.identity import NodeIdentity
from formation.node.net import links
from formation.node.net.component import MeshComponent
from formation.node.service import NodeService
from formation.node.state.component import StateComponent
from formation.node.state.store import StateStore

pytestmark = [requires_mesh_tools, pytest.mark.root]

FIRST, NEXT = "10.42.0.1", "10.42.0.2"


async def test_a_removed_node_gives_up_its_address_and_claims_anew_when_readmitted(
        short_tmp: Path) -> None:
    b_id, c_id = NodeIdentity.generate(), NodeIdentity.generate()
    async with Testbed(["a"]) as bed:
        host = bed.hosts["a"].net
        settings = make_settings(short_tmp / "a", mesh={
            "enabled": True, "backend": "wireguard-go", "status_interval_s": 0.5})
        state = StateComponent()
        service = NodeService(settings, components=[state, MeshComponent(host, state)])
        admin = await StateStore.open(short_tmp / "b.db", b_id)
        await service.start()
        try:
            assert service.identity is not None
            a_key = service.identity.public_key_hex
            store = state.require_store()

            async def ipv4_on_interface() -> list[str]:
                return [x for x in await links.addresses(host, "formnet0") if ":" not in x]

            async def holds(expected: list[str]) -> bool:
                return await ipv4_on_interface() == expected

            async def exchange() -> None:
                await store.ingest([raw for _, raw in await admin.log(0, 1000)], origin="test")
                await admin.ingest([raw for _, raw in await store.log(0, 1000)], origin="test")

            await admin.create_network("lab", "10.42.0.0/16")
            await admin.append("node.admit", {"node": a_key, "roles": ["member"]})
            await exchange()
            await wait_for(lambda: holds([f"{FIRST}/16"]), 15, "a's first address")
            await exchange()  # the admin has seen a's claim before it removes a

            await admin.append("node.remove", {"node": a_key})
            await exchange()
            await wait_for(lambda: holds([]), 15, "a's address off its interface")

            # the freed address is allotted again, to c; then a is admitted once more
            await admin.append("node.admit", {"node": c_id.public_key_hex, "roles": ["member"]})
            c = await StateStore.open(short_tmp / "c.db", c_id)
            try:
                await c.ingest([raw for _, raw in await admin.log(0, 1000)], origin="test")
                claim = await c.append("address.claim", {"ip": FIRST})
            finally:
                await c.close()
            await admin.ingest([claim.raw], origin="test")
            await admin.append("node.admit", {"node": a_key, "roles": ["member"]})
            await exchange()
            await wait_for(lambda: holds([f"{NEXT}/16"]), 15, f"a's interface on {NEXT} only")
            addresses = {x["node"]: x["ip"] for x in await store.view("addresses")
                         if not x.get("lost")}
            assert addresses == {c_id.public_key_hex: FIRST, a_key: NEXT}
        finally:
            await service.stop()
            await admin.close()
