"""Two and three real `formation node` processes on loopback replicate the state store:
concurrent writes converge; a node stopped for a while catches up after restarting."""

from __future__ import annotations

import asyncio

import pytest
from statecluster import NodeProc, call, cleanup, converged
from waiting import until

from formation.api import state_models as sm
from formation.api import state_routes as sr

COLLECTIONS = ("network", "nodes", "addresses", "instances", "images", "dns", "invites",
               "accounts")


@pytest.fixture
def nodes(short_tmp):
    made: list[NodeProc] = []

    def make(count: int) -> list[NodeProc]:
        made.extend(NodeProc(short_tmp, f"n{i}") for i in range(count))
        for n in made:
            n.peers = [m.peer_spec for m in made if m is not n]
        for n in made:
            n.start()
        return made

    yield make
    cleanup(made)


async def _found(nodes: list[NodeProc]) -> None:
    founder = nodes[0]
    await call(founder, sr.state_create_network,
               sm.CreateNetworkRequest(name="lab", cidr="10.9.0.0/24"))
    for other in nodes[1:]:
        await call(founder, sr.state_append, sm.AppendRequest(
            kind="node.admit", payload={"node": other.identity.public_key_hex,
                                        "roles": ["member"]}))
    await converged(nodes)


async def _write_many(node: NodeProc, count: int, tag: str) -> None:
    async with node.client() as client:
        for i in range(count):
            await client.call(sr.state_append, sm.AppendRequest(
                kind="instance.create", payload={"name": f"{tag}{i}", "spec": {
                    "image": "ab" * 32, "vcpus": 1 + i % 128, "memory_mb": 512, "disk_gb": 5}}))


async def _views(node: NodeProc) -> dict:
    return {c: (await call(node, sr.state_view, collection=c)).items for c in COLLECTIONS}


async def _same_views(nodes: list[NodeProc], timeout_s: float = 30.0) -> tuple[list[str], dict]:
    """Equal views on converged heads, and those heads. A node may still write after the heads
    first agree (a restarted node re-publishes its record, a loser of an address claim claims
    another), so this retries until heads and views agree at once."""
    async def agreed() -> tuple[list[str], dict] | None:
        heads = await converged(nodes)
        all_views = [await _views(n) for n in nodes]
        still = [(await call(n, sr.state_heads)).heads for n in nodes]
        if all(v == all_views[0] for v in all_views) and all(h == heads for h in still):
            return heads, all_views[0]
        return None

    return await until(agreed, timeout_s, 0.2, what="equal views on converged heads")


async def test_two_nodes_converge_after_concurrent_writes(nodes) -> None:
    a, b = nodes(2)
    await _found([a, b])
    await asyncio.gather(_write_many(a, 15, "a"), _write_many(b, 15, "b"))
    await converged([a, b])
    _, views = await _same_views([a, b])
    assert len(views["instances"]) == 30
    addresses = {n["address"] for n in views["nodes"]}
    assert len(addresses) == 2 and None not in addresses  # both claimed distinct addresses
    status = await call(b, sr.state_status)
    assert status.peers[0].ok and status.equivocations == []


async def test_three_nodes_converge_and_a_stopped_node_catches_up(nodes) -> None:
    a, b, c = nodes(3)
    await _found([a, b, c])
    await asyncio.gather(_write_many(a, 8, "a"), _write_many(b, 8, "b"), _write_many(c, 8, "c"))
    await converged([a, b, c])
    c.stop()
    await asyncio.gather(_write_many(a, 20, "x"), _write_many(b, 20, "y"))
    await converged([a, b])
    c.start()
    _, views = await _same_views([a, b, c])
    assert len(views["instances"]) == 24 + 40
    # the CLI against a real node: the restarted node may still write back its own record, so
    # the CLI's heads are compared with the API's heads read around it, until both agree.
    async def cli_agrees():
        before = (await call(c, sr.state_heads)).heads
        shown = (await asyncio.to_thread(c.cli_json, "state", "heads"))["heads"]
        after = (await call(c, sr.state_heads)).heads
        return shown if shown == before == after else None

    heads = await until(cli_agrees, timeout_s=20)
    assert c.cli_json("state", "verify")["faults"] == []
    assert c.cli_json("state", "rebuild")["equal"] is True
    shown = c.cli_json("state", "show", heads[0])
    assert shown["id"] == heads[0]
    log = c.cli_json("state", "log", "--limit", "5")
    assert log["ops"][0]["kind"] == "network.genesis"
    bad = c.cli("state", "show", "nothex")
    assert bad.returncode != 0 and "expected 64" in bad.stderr and "Traceback" not in bad.stderr
