"""The route endpoints on a real node service (unix socket, real SQLite): the node (the network's
admin) writes routes for accounts' instances, tenants through the draft/relay endpoints; a taken
hostname, a port the instance does not expose and a malformed hostname are refused with one line
and nothing is written."""

from __future__ import annotations

import pytest
from statekit import craft, spec

from formation.api import account_models as am
from formation.api import account_routes as ar
from formation.api import route_models as rm
from formation.api import route_routes as rr
from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api.client import ApiError, NodeClient
from formation.identity import NodeIdentity
from formation.node.state import wire
from formation.tenant_client import sign_draft

ALICE, BOB = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (60, 61))


async def tenant_write(client, who: NodeIdentity, kind: str, payload: dict) -> str:
    draft = await client.call(ar.tenant_draft, am.DraftRequest(
        kind=kind, payload=payload, author=who.public_key_hex))
    signed = sign_draft(draft, who, kind, payload)
    return (await client.call(ar.tenant_submit, am.SignedOp(op=signed))).id


async def ops(client) -> int:
    return (await client.call(sr.state_heads)).ops


async def refused(client, endpoint, body=None, **params) -> ApiError:
    before = await ops(client)
    try:
        await client.call(endpoint, body, **params)
    except ApiError as exc:
        assert "\n" not in exc.body.message
        assert await ops(client) == before  # nothing written
        return exc
    raise AssertionError("not refused")


async def setup(client) -> tuple[str, str]:
    await client.call(sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    for name, who in (("alice", ALICE), ("bob", BOB)):
        await client.call(sr.state_append, sm.AppendRequest(kind="account.set", payload={
            "name": name, "keys": [who.public_key_hex], "roles": ["user"]}))
    web = await tenant_write(client, ALICE, "instance.create", {
        "name": "web", "spec": spec(ports=["80/tcp"]), "account": "alice"})
    api = await tenant_write(client, BOB, "instance.create", {
        "name": "api", "spec": spec(ports=["8080/tcp"]), "account": "bob"})
    return web, api


async def test_the_node_writes_lists_and_removes_routes(node, client) -> None:
    web, _api = await setup(client)
    info = await client.call(rr.route_set, rm.RouteSet(host="www.example.com", to=["web"]))
    assert info.account == "alice" and info.port == 80 and info.instances == [web]
    assert [b.name for b in info.backends] == ["web"] and info.backends[0].address is None
    [listed] = (await client.call(rr.route_list)).routes
    assert listed.id == info.id and listed.host == "www.example.com"
    exc = await refused(client, rr.route_set, rm.RouteSet(host="www.example.com", to=["web"],
                                                          port=8080))
    assert exc.status == 400 and "does not expose 8080/tcp" in exc.body.message
    exc = await refused(client, rr.route_set, rm.RouteSet(host="bad_host.example.com",
                                                          to=["web"]))
    assert exc.status == 400 and "payload.host: expected a DNS name" in exc.body.message
    exc = await refused(client, rr.route_set, rm.RouteSet(host="t.example.com", to=["nope"]))
    assert exc.status == 404
    gone = await client.call(rr.route_remove, host="www.example.com")
    assert gone.removed == [info.id]
    assert (await client.call(rr.route_list)).routes == []
    assert (await refused(client, rr.route_remove, host="www.example.com")).status == 404


async def test_a_tenant_cannot_take_another_accounts_hostname_or_instance(node, client) -> None:
    web, api = await setup(client)
    await tenant_write(client, ALICE, "route.set", {
        "host": "www.example.com", "protocol": "http", "port": 80, "instances": [web],
        "account": "alice"})
    before = await ops(client)
    payload = {"host": "www.example.com", "protocol": "http", "port": 8080,
               "instances": [api], "account": "bob"}
    try:
        await tenant_write(client, BOB, "route.set", payload)
        raise AssertionError("bob took alice's hostname")
    except ApiError as exc:
        assert exc.status == 409
        assert exc.body.message.startswith("host: www.example.com is served for account "
                                           "'alice'; its routes must be removed first")
    try:
        await tenant_write(client, BOB, "route.set", {**payload, "host": "b.example.com",
                                                      "port": 80, "instances": [web]})
        raise AssertionError("bob routed to alice's instance")
    except ApiError as exc:
        assert exc.status == 403 and "belongs to account 'alice'" in exc.body.message
    await tenant_write(client, ALICE, "route.set", {
        "host": "*.example.net", "protocol": "http", "port": 80, "instances": [web],
        "account": "alice"})
    before = await ops(client)
    try:
        await tenant_write(client, BOB, "route.set", {**payload, "host": "b.example.net"})
        raise AssertionError("bob took a name under alice's wildcard")
    except ApiError as exc:
        assert exc.status == 409 and exc.body.message.startswith(
            "host: b.example.net is under *.example.net, served for account 'alice'")
    assert await ops(client) == before
    # the node (an admin) may not hand her hostname to bob either, but routes bob's own name
    exc = await refused(client, rr.route_set, rm.RouteSet(host="www.example.com", to=["api"]))
    assert exc.status == 409
    info = await client.call(rr.route_set, rm.RouteSet(host="api.example.com", to=["api"],
                                                       protocol="tcp", listen=9000))
    assert info.account == "bob" and info.port == 8080 and info.listen == 9000
    exc = await refused(client, rr.route_set, rm.RouteSet(host="x.example.com", to=["web"],
                                                          protocol="tcp", listen=9000))
    assert exc.status == 409 and exc.body.message.startswith("listen: port 9000 is taken")


async def test_a_member_node_pushing_route_ops_is_refused(node, client) -> None:
    """A hostile member signs route ops itself and pushes them over signed TCP as a peer
    would: each is refused with one line, nothing is written; the route endpoint refuses it."""
    web, _api = await setup(client)
    member = NodeIdentity.generate()
    await client.call(sr.state_append, sm.AppendRequest(
        kind="node.admit", payload={"node": member.public_key_hex, "roles": ["member"]}))
    admin_route = await tenant_write(client, ALICE, "route.set", {
        "host": "www.example.com", "protocol": "http", "port": 80, "instances": [web],
        "account": "alice"})
    replica = node.parts.state.require_store().replica
    hostile = [craft(member, replica, "route.set", {
        "host": "evil.example.com", "protocol": "http", "port": 80, "instances": [web]},
        network=replica.network)]
    address = node.listen_addresses()[1].removeprefix("tcp:")
    before = await ops(client)
    async with NodeClient.tcp(address, member) as remote:
        pushed = await remote.call(sr.state_sync_push,
                                   sm.OpBatch(ops=wire.pack(hostile), count=1))
        assert pushed.refused == 1 and pushed.accepted == 0
        [why] = pushed.refusals
        assert why.reason == "unauthorized" and "member node may not write routes" in why.message
        remove = craft(member, replica, "route.remove", {"route": admin_route},
                       network=replica.network)
        pushed = await remote.call(sr.state_sync_push,
                                   sm.OpBatch(ops=wire.pack([remove]), count=1))
        assert pushed.refused == 1
        with pytest.raises(ApiError) as err:
            await remote.call(rr.route_set, rm.RouteSet(host="x.example.com", to=["web"]))
        assert err.value.status == 403
    assert await ops(client) == before
    assert [r.host for r in (await client.call(rr.route_list)).routes] == ["www.example.com"]
