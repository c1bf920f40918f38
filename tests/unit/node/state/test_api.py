"""The state endpoints on a real node service (unix socket and signed TCP)."""

from __future__ import annotations

import pytest
from statekit import craft, found_with_member, spec
from waiting import until

from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api.client import ApiError, NodeClient
from formation.api.models import Empty
from formation.identity import NodeIdentity
from formation.node.state import wire
from formation.node.state.op import decode


async def test_found_write_read_and_check(node, client) -> None:
    events = client.events(since=0, topic="state")
    genesis = await client.call(sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    assert genesis.kind == "network.genesis" and genesis.author == node.identity.public_key_hex
    inst = await client.call(sr.state_append, sm.AppendRequest(
        kind="instance.create", payload={"name": "web", "spec": spec()}))
    [network] = (await client.call(sr.state_view, collection="network")).items
    assert network["name"] == "lab" and network["admins"] == [node.identity.public_key_hex]
    [instance] = (await client.call(sr.state_view, collection="instances")).items
    assert instance["key"] == inst.id and instance["owner"] == node.identity.public_key_hex
    fetched = await client.call(sr.state_op, op_id=inst.id)
    assert fetched.payload == {"name": "web", "spec": spec()} and fetched.raw
    assert fetched.parents and fetched.seq >= 2
    page = await client.call(sr.state_log, query=sm.LogQuery(after=0, limit=1))
    assert page.ops[0].id == genesis.id and page.next_after == 1
    heads = await client.call(sr.state_heads)
    assert heads.network and heads.ops >= 2
    kinds = []
    async for event in events:
        kinds.append(event.kind)
        if "instance.create" in kinds:
            break
    assert kinds[0] == "network.genesis"
    verified = await client.call(sr.state_verify, Empty())
    assert verified.faults == [] and verified.ops == heads.ops
    rebuilt = await client.call(sr.state_rebuild, Empty())
    assert rebuilt.equal and rebuilt.differing == []
    # the node claims a mesh address for itself once it is a member
    async def claimed() -> str | None:
        return (await client.call(sr.state_view, collection="nodes")).items[0].get("address")

    assert await until(claimed, 5, 0.05) == "10.42.0.1"


async def test_refusals_are_clear_counted_and_logged(node, client) -> None:
    await client.call(sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    with pytest.raises(ApiError) as err:
        await client.call(sr.state_append, sm.AppendRequest(kind="dns.set", payload={
            "name": "Bad Name", "type": "A", "value": "1.2.3.4"}))
    assert err.value.status == 400 and "payload.name" in str(err.value)
    with pytest.raises(ApiError) as err:
        await client.call(sr.state_create_network, sm.CreateNetworkRequest(name="again"))
    assert "already belongs" in str(err.value)
    bad = wire.pack([b"\x82\x41\x00"])
    pushed = await client.call(sr.state_sync_push, sm.OpBatch(ops=bad, count=1))
    assert pushed.refused == 1
    status = await client.call(sr.state_status)
    assert status.refused.get("malformed") == 1 and status.refused.get("invalid") == 1
    metrics = (await client.raw_get("/metrics")).decode()
    assert 'formation_state_ops_refused_total{reason="malformed"} 1.0' in metrics
    with pytest.raises(ApiError) as err:
        await client.call(sr.state_view, collection="bogus")
    assert err.value.status == 404
    with pytest.raises(ApiError) as err:
        await client.call(sr.state_op, op_id="zz")
    assert err.value.status == 400


async def test_writes_over_tcp_are_refused_and_strangers_cannot_sign(node) -> None:
    address = node.listen_addresses()[1].removeprefix("tcp:")
    async with NodeClient.tcp(address, node.identity) as own:
        with pytest.raises(ApiError) as err:
            await own.call(sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
        assert err.value.status == 403
        assert (await own.call(sr.state_heads)).heads == []
    async with NodeClient.tcp(address, NodeIdentity.generate()) as stranger:
        with pytest.raises(ApiError) as err:
            await stranger.call(sr.state_heads)
        assert err.value.status == 401


async def test_members_of_the_network_may_sign_requests(node, client) -> None:
    address = node.listen_addresses()[1].removeprefix("tcp:")
    newcomer = NodeIdentity.generate()
    await client.call(sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    async with NodeClient.tcp(address, newcomer) as remote:
        with pytest.raises(ApiError) as err:
            await remote.call(sr.state_heads)
        assert err.value.status == 401
        await client.call(sr.state_append, sm.AppendRequest(
            kind="node.admit", payload={"node": newcomer.public_key_hex, "roles": ["member"]}))
        assert len((await remote.call(sr.state_heads)).heads) == 1
        await client.call(sr.state_append, sm.AppendRequest(
            kind="node.remove", payload={"node": newcomer.public_key_hex}))
        with pytest.raises(ApiError) as err:
            await remote.call(sr.state_heads)
        assert err.value.status == 401


async def test_equivocations_are_published_on_the_event_stream(node, client) -> None:
    events = client.events(since=0, topic="state")
    liar = await found_with_member(client)
    replica = node.parts.state.require_store().replica
    # two different ops signed by one member with one sequence number, pushed as from a peer
    one = craft(liar, replica, "node.record", {"name": "left"}, network=replica.network)
    two = craft(liar, replica, "node.record", {"name": "right"}, network=replica.network)
    pushed = await client.call(sr.state_sync_push, sm.OpBatch(ops=wire.pack([one, two]), count=2))
    assert pushed.accepted == 2
    async for event in events:
        if event.kind == "equivocation":
            break
    assert event.data["author"] == liar.public_key_hex
    assert event.data["seq"] == decode(one).seq
    assert sorted(event.data["ops"]) == sorted([decode(one).id.hex(), decode(two).id.hex()])
    status = await client.call(sr.state_status)
    assert [e.ops for e in status.equivocations] == [event.data["ops"]]
