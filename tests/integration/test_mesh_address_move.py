"""A node that loses a concurrent claim of its mesh address moves: real state stores (SQLite),
a real node service running the state, mesh and DNS parts, real wireguard-go in a simulated host.

Node b founds the network and claims 10.42.0.1; node a, not having seen that claim yet, claims
the same address and puts it on its interface. When b's claim arrives it wins (earlier HLC):
a's store claims the next free address, and the mesh moves a's interface to it, the peer for b
gets b's address in its allowed IPs, and form-dns moves to the new address (and to the new
slot's VM gateway)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from mesh_support import requires_mesh_tools
from settings_factory import make_settings
from waiting import wait_for

from bench.support.testbed import Testbed
from formation.identity import NodeIdentity
from formation.node.dns.component import DnsComponent
from formation.node.net import links
from formation.node.net.component import MeshComponent
from formation.node.service import NodeService
from formation.node.state.component import StateComponent
from formation.node.state.store import StateStore

pytestmark = [requires_mesh_tools, pytest.mark.root]

CONTESTED, NEXT = "10.42.0.1", "10.42.0.2"


async def test_the_loser_of_a_concurrent_claim_moves_its_interface(short_tmp: Path) -> None:
    b_id = NodeIdentity.generate()
    async with Testbed(["a", "b"]) as bed:
        host = bed.hosts["a"].net
        settings = make_settings(short_tmp / "a", mesh={
            "enabled": True, "backend": "wireguard-go", "status_interval_s": 0.5},
            dns={"enabled": True, "port": 5300})
        state = StateComponent()
        mesh, dns = MeshComponent(host, state), DnsComponent(host, state)
        service = NodeService(settings, components=[state, mesh, dns])
        rival = await StateStore.open(short_tmp / "b.db", b_id)
        await service.start()
        try:
            assert service.identity is not None
            store = state.require_store()
            await rival.create_network("lab", "10.42.0.0/16")
            await rival.append("node.admit", {"node": service.identity.public_key_hex,
                                              "roles": ["member"]})
            await rival.append("node.record", {
                "name": "b", "wireguard_key": b_id.wireguard_public_key,
                "wg_endpoints": [f"{bed.hosts['b'].underlay_ip}:51820"]})
            before_claim = [raw for _, raw in await rival.log(0, 100)]
            claim = await rival.ensure_address()
            assert claim is not None and claim.payload == {"ip": CONTESTED}
            await asyncio.sleep(0.05)  # b's claim is the earlier one

            await store.ingest(before_claim, origin="test")  # a has not seen b's claim

            async def on_interface(cidr: str) -> bool:
                return cidr in await links.addresses(host, "formnet0")

            await wait_for(lambda: on_interface(f"{CONTESTED}/16"), 15, "a's first address")
            await store.ingest([claim.raw], origin="test")  # b's claim arrives and wins

            async def moved() -> bool:
                here = await links.addresses(host, "formnet0")
                return [a for a in here if ":" not in a] == [f"{NEXT}/16"]  # IPv4

            await wait_for(moved, 15, f"a's interface to hold only {NEXT}/16")
            view = {n["name"]: n["address"] for n in await store.view("nodes")}
            assert view == {"b": CONTESTED, settings.name: NEXT}
            assert mesh.backend is not None
            backend = mesh.backend

            async def b_routed() -> bool:  # b holds the contested address: a peer now
                peer = (await backend.status()).peer(b_id.wireguard_public_key)
                return peer is not None and \
                    set(peer.allowed_ips) == {f"{CONTESTED}/32", "10.42.1.0/24"}

            await wait_for(b_routed, 10, "b's peer with the contested address")
            assert (await mesh.status()).address == f"{NEXT}/16"

            async def dns_moved() -> bool:
                return dns.server is not None and \
                    [a for a, _p in dns.server.bound] == [NEXT]

            await wait_for(dns_moved, 10, "form-dns on the new address")
            # the VMs' resolver moves with the slot: 10.42.0.2 is slot 2, VM subnet 10.42.2.0/24
            await wait_for(lambda: dns.gateway_server is not None and [
                a for a, _p in dns.gateway_server.bound] == ["10.42.2.1"], 10,
                "form-dns on the new slot's VM gateway")
        finally:
            await service.stop()
            await rival.close()
