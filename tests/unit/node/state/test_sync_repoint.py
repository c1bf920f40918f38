"""A replication peer known by its key moves to a new address (the mesh address, once the mesh
reaches it) without becoming a second peer, and pushes follow it. Two real node services over
signed TCP on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
from nodepair import two_nodes
from waiting import until


@pytest.fixture
async def pair(short_tmp: Path):
    async with two_nodes(short_tmp) as services:
        yield services


async def test_a_peer_moves_to_its_new_address_and_pushes_follow(pair) -> None:
    a, b = pair
    store_a, store_b = a.parts.state.require_store(), b.parts.state.require_store()
    key_b = b.identity.public_key_hex
    await store_a.create_network("lab", "10.1.0.0/24")
    await store_a.append("node.admit", {"node": key_b, "roles": ["member"]})

    async def a_recorded_itself() -> bool:  # the node's own record, written in the background
        return any(n.get("endpoints") for n in await store_a.view("nodes"))

    await until(a_recorded_itself, 10)
    replication = a.parts.state.replication
    assert replication is not None
    for coro in replication.add_peer("127.0.0.1:9", key_b):  # nothing listens there
        a.spawn(coro)

    real = b.listen_addresses()[1].removeprefix("tcp:")
    for coro in replication.add_peer(real, key_b):
        a.spawn(coro)
    assert [(p.address, p.key) for p in replication.peers] == [(real, key_b)]
    assert replication.add_peer(real, key_b) == []  # already there: nothing to do
    # b gets a's log only now that b is a's peer: an op a writes in the background (its own
    # record) before that would reach b neither by push nor by this copy, and b would buffer
    # every later push for want of it (anti-entropy, which would fetch it, is off here). CI
    # once lost that race when the copy came first.
    await store_b.ingest([raw for _, raw in await store_a.log(0, 100)])
    await store_a.append("node.record", {"name": "a-after-the-move"})

    async def arrived() -> bool:
        return any(n.get("name") == "a-after-the-move" for n in await store_b.view("nodes"))

    await until(arrived, 10)
