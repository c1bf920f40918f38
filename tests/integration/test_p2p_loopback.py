"""Three real node services on loopback, no mDNS (loopback is not advertised): they find each
other through bootstrap lists and peer exchange, gossip, and track membership. Needs no root."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from waiting import until as _until

from formation.api import discovery_routes, p2p_routes
from formation.api.client import NodeClient
from formation.api.p2p_models import PublishRequest
from formation.node.service import NodeService
from tests.loopback_nodes import loopback_nodes

FAST = {"heartbeat_s": 0.2, "suspect_after_s": 0.5, "dead_after_s": 0.8}


@pytest.fixture
async def trio(short_tmp: Path):
    async with loopback_nodes(short_tmp, 3, FAST, trust_each_other=True) as services:
        yield services


async def _members(service: NodeService) -> dict[str, str]:
    async with NodeClient.unix(service.settings.api.socket) as client:
        found = await client.call(p2p_routes.members)
    return {m.name: m.state for m in found.members}


async def test_bootstrap_peer_exchange_gossip_and_failure(trio):
    n0, n1, n2 = trio

    async def all_alive():
        views = [await _members(s) for s in trio]
        return all(len(v) == 2 and set(v.values()) == {"alive"} for v in views)

    await _until(all_alive)
    async with NodeClient.unix(n2.settings.api.socket) as client:
        peers = await client.call(discovery_routes.discovery_peers)
    by_name = {p.name: p for p in peers.peers}
    assert "bootstrap" in by_name["n0"].sources
    assert by_name["n1"].sources == ["gossip"]  # learnt from n0's heartbeat, not configured
    assert peers.mdns.startswith("off")

    # A message published on n1 reaches n0 and n2 exactly once.
    events = {s.settings.name: s.bus.subscribe("gossip") for s in (n0, n2)}
    async with NodeClient.unix(n1.settings.api.socket) as client:
        result = await client.call(p2p_routes.gossip_publish,
                                   PublishRequest(topic="state", payload={"x": 1}))
    for name, sub in events.items():
        event = await asyncio.wait_for(sub.queue.get(), 5.0)
        assert (name, event.kind, event.data["id"]) == (name, "delivered", result.id)
    # Instead of a pause: wait until nothing is left in flight that could still deliver it
    # again (n1 has nothing queued nor failed for either peer; their inboxes are empty).
    async def nothing_in_flight() -> bool:
        async with NodeClient.unix(n1.settings.api.socket) as client:
            sender = await client.call(p2p_routes.gossip_status)
        if len(sender.peers) != 2 or any(q.queued or q.failures for q in sender.peers):
            return False
        for service in (n0, n2):
            async with NodeClient.unix(service.settings.api.socket) as client:
                if (await client.call(p2p_routes.gossip_status)).inbox:
                    return False
        return True

    await _until(nothing_in_flight, timeout_s=5)
    assert all(sub.queue.empty() for sub in events.values())

    # n2 stops: the others see it suspect, then dead; both transitions are events.
    membership = n0.bus.subscribe("membership")
    await n2.stop()
    await _until(lambda: _all_dead(trio[:2], "n2"), timeout_s=5)
    kinds = []
    while not membership.queue.empty():
        event = membership.queue.get_nowait()
        if event.data["name"] == "n2":
            kinds.append(event.kind)
    assert kinds == ["suspect", "dead"]


async def _all_dead(services, name: str) -> bool:
    views = [await _members(s) for s in services]
    return all(view.get(name) == "dead" for view in views)
