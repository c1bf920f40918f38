"""Every route of the served OpenAPI document, called over real TCP and over the unix socket of
a real node service, by each kind of caller: the local operator, an unsigned client, an unknown
key, a member, an admin, a removed member, and a member whose request was signed for another
node. Each must get exactly what the route's audience says: refused with 401 (no valid
signature by a key of the network) or 403 (a key of the network, but not of the audience), or
let through to the handler (any other status: a 400 for the deliberately invalid body is fine).

The audiences are pinned here too, so making a node-local route reachable from the network is a
visible change of this table, not a silent one."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from settings_factory import make_settings

from formation.api import routes
from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api.auth import sign_request
from formation.api.client import NodeClient
from formation.api.models import Empty
from formation.identity import NodeIdentity
from formation.node.service import NodeService

AUDIENCES = {
    "health": "public", "ca_root": "public", "node_status": "member", "get_config": "local",
    "get_capabilities": "member", "probe_capabilities": "local", "events": "member",
    "discovery_hello": "public", "discovery_peers": "member",
    "gossip_push": "member", "gossip_publish": "local", "gossip_status": "member",
    "members": "member",
    "state_status": "member", "state_heads": "member", "state_view": "member",
    "state_op": "member", "state_log": "member", "state_create_network": "local",
    "state_append": "local", "state_verify": "local", "state_rebuild": "local",
    "state_sync_push": "member", "state_sync_range": "member", "state_sync_walk": "member",
    "mesh_status": "member", "node_metrics": "member", "node_logs": "local",
    "get_settings": "local", "update_settings": "local",
    "invite_create": "local", "join_token": "local", "join_ask": "local",
    "join_handshake": "any_key", "join_knock": "any_key", "join_pending": "admin",
    "join_approve": "local", "join_reject": "local", "node_remove": "local",
    "ssh_authorized_keys": "local", "host_interfaces": "local",
    "openapi": "public", "metrics": "public",
    "vm_list": "member", "vm_show": "member", "vm_create": "member", "vm_start": "member",
    "vm_stop": "member", "vm_restart": "member", "vm_resize": "member", "vm_delete": "member",
    "vm_migrate": "member", "node_drain": "member",
    "vm_serial": "member",
    "image_list": "member", "image_import": "local", "image_delete": "member",
    "image_blob": "member",
    "tenant_draft": "tenant", "tenant_submit": "tenant", "tenant_account": "tenant",
    "tenant_instances": "tenant", "tenant_images": "tenant",
    "pack_build_start": "member", "pack_build_list": "member", "pack_build_show": "member",
    "pack_build_cancel": "member", "pack_upload_start": "member", "pack_upload_chunk": "member",
    "pack_upload_cancel": "member",
    "route_list": "member", "route_set": "admin", "route_remove": "admin",
    "tenant_routes": "tenant", "tenant_grants": "tenant",
    "account_invite_create": "local", "account_invite_list": "admin",
    "account_uninvite": "local", "account_redeem_draft": "any_key", "account_redeem": "any_key",
    "tenant_blob_held": "tenant", "tenant_blob_start": "tenant", "tenant_blob_chunk": "tenant",
    "tenant_blob_cancel": "tenant",
}
# Who each audience lets through, by caller; a caller it refuses gets the status given.
LOCAL, UNSIGNED, UNKNOWN, MEMBER, ADMIN, REMOVED, OTHER_NODE = (
    "local", "unsigned", "unknown", "member", "admin", "removed", "for-another-node")
ALLOWED = {
    "public": {LOCAL, UNSIGNED, UNKNOWN, MEMBER, ADMIN, REMOVED, OTHER_NODE},
    "any_key": {LOCAL, UNKNOWN, MEMBER, ADMIN, REMOVED},
    "tenant": {LOCAL},  # and keys of accounts (none among these callers)
    "member": {LOCAL, MEMBER, ADMIN},
    "placed": {LOCAL, MEMBER, ADMIN},
    "admin": {LOCAL, ADMIN},
    "local": {LOCAL},
}


def refusal(audience: str, caller: str) -> int | None:
    """The status `caller` must get from a route of `audience`; None: let through."""
    if caller in ALLOWED[audience]:
        return None
    if caller in (UNSIGNED, UNKNOWN, REMOVED, OTHER_NODE):
        return 401  # no valid signature by a key of this network, for this node
    return 403  # a key of the network, outside the audience


@dataclass
class Cluster:
    node: NodeService
    other: NodeIdentity  # a node the "for another node" request is signed for
    keys: dict[str, NodeIdentity]


@pytest.fixture
async def cluster(short_tmp) -> AsyncIterator[Cluster]:
    node = NodeService(make_settings(short_tmp))
    await node.start()
    keys = {name: NodeIdentity.generate() for name in (UNKNOWN, MEMBER, ADMIN, REMOVED)}
    async with NodeClient.unix(node.settings.api.socket) as local:
        await local.call(sr.state_create_network, sm.CreateNetworkRequest(name="aud"))
        for name, roles in ((MEMBER, ["member"]), (ADMIN, ["admin", "member"]),
                            (REMOVED, ["member"])):
            await local.call(sr.state_append, sm.AppendRequest(
                kind="node.admit", payload={"node": keys[name].public_key_hex, "roles": roles}))
        await local.call(sr.state_append, sm.AppendRequest(
            kind="node.remove", payload={"node": keys[REMOVED].public_key_hex}))
    try:
        yield Cluster(node, NodeIdentity.generate(), keys)
    finally:
        await node.stop()


def _fill(path: str, operation: dict) -> str:
    """A path with each parameter set to a value its pattern accepts."""
    values = {"collection": "nodes", "op_id": "ab" * 32, "id": "n" + "a" * 24,
              "instance": "no-such-vm", "image": "web", "digest": "ab" * 32,
              "node": "no-such-node", "build": "0123456789abcdef", "host": "no.example.com",
              "upload": "0123456789abcdef", "name": "alice", "invite_key": "ab" * 32}
    for param in operation.get("parameters", []):
        if param["in"] == "path":
            value = values[param["name"]]
            pattern = param["schema"].get("pattern")
            assert pattern is None or re.search(pattern, value), (path, param)
            path = path.replace("{" + param["name"] + "}", value)
    return path


def _headers(cluster: Cluster, caller: str, method: str, target: str, body: bytes) -> dict:
    if caller in (LOCAL, UNSIGNED):
        return {}
    node_key = cluster.node.identity.public_key_hex  # type: ignore[union-attr]
    if caller == OTHER_NODE:
        return sign_request(cluster.keys[MEMBER], method, target, body,
                            cluster.other.public_key_hex)
    return sign_request(cluster.keys[caller], method, target, body, node_key)


async def _status(session: aiohttp.ClientSession, base: str, method: str, target: str,
                  body: bytes, headers: dict) -> tuple[int, str]:
    """The status only: a stream that opened is closed at once."""
    if body:
        headers = {**headers, "Content-Type": "application/json"}
    async with session.request(method, base + target, data=body or None,
                               headers=headers) as resp:
        if resp.content_type == "text/event-stream":
            return resp.status, ""
        return resp.status, (await resp.read()).decode(errors="replace")[:200]


async def test_every_route_answers_each_caller_as_its_audience_says(cluster: Cluster) -> None:
    node = cluster.node
    address = node.listen_addresses()[1].removeprefix("tcp:")
    async with aiohttp.ClientSession() as tcp, aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=str(node.settings.api.socket))) as unix:
        async with tcp.get(f"http://{address}{routes.OPENAPI_PATH}") as resp:
            document = await resp.json()
        operations = [(path, method.upper(), op) for path, ops in document["paths"].items()
                      for method, op in ops.items()]
        assert {op["operationId"] for _, _, op in operations} == set(AUDIENCES), \
            "a route was added or removed: give it its audience in AUDIENCES"
        checked = 0
        for path, method, operation in operations:
            audience = operation["x-formation-audience"]
            assert audience == AUDIENCES[operation["operationId"]], operation["operationId"]
            target = _fill(path, operation)
            body = b"[]" if method != "GET" else b""  # invalid for every model: a 400 if let in
            for caller in (LOCAL, UNSIGNED, UNKNOWN, MEMBER, ADMIN, REMOVED, OTHER_NODE):
                session, base = (unix, "http://node") if caller == LOCAL else (
                    tcp, f"http://{address}")
                headers = _headers(cluster, caller, method, target, body)
                status, text = await _status(session, base, method, target, body, headers)
                expected = refusal(audience, caller)
                where = (method, path, caller, status, text)
                if expected is None:
                    assert status not in (401, 403), where
                else:
                    assert status == expected, where
                checked += 1
    assert checked == len(AUDIENCES) * 7


async def test_a_member_cannot_write_another_nodes_settings(short_tmp) -> None:
    """On main any trusted key could PUT /v1/settings over signed TCP and rewrite the node's
    config (admin SSH keys included). Now it is refused before the handler, and the file stays
    as it was; the same change through the unix socket is let through."""
    config = short_tmp / "node.yaml"
    member = NodeIdentity.generate()
    config.write_text(f"name: victim\ntrusted_keys: [{member.public_key_hex}]\n")
    settings = make_settings(short_tmp, trusted_keys=[member.public_key_hex])
    node = NodeService(settings, config_file=config)
    await node.start()
    try:
        address = node.listen_addresses()[1].removeprefix("tcp:")
        body = json.dumps({"name": "owned", "admin_ssh_keys": ["ssh-ed25519 AAAA evil"]}).encode()
        headers = sign_request(member, "PUT", "/v1/settings", body,
                               node.identity.public_key_hex)  # type: ignore[union-attr]
        headers["Content-Type"] = "application/json"
        async with aiohttp.ClientSession() as session:
            async with session.put(f"http://{address}/v1/settings", data=body,
                                   headers=headers) as resp:
                answer = await resp.json()
                assert resp.status == 403, answer
            async with session.get(f"http://{address}/v1/node", headers={
                    **sign_request(member, "GET", "/v1/node", b"",
                                   node.identity.public_key_hex)}) as resp:  # type: ignore
                assert resp.status == 200  # positive control: the key is a member's
        assert "local callers" in answer["message"]
        assert config.read_text() == f"name: victim\ntrusted_keys: [{member.public_key_hex}]\n"
    finally:
        await node.stop()


async def test_a_request_signed_for_node_a_is_refused_by_node_b(short_tmp) -> None:
    """A member trusted by two nodes signs a request for A. A accepts it; the very same request
    (headers and body) replayed to B within the freshness window is refused: B is not the node
    it names. On main B accepted it."""
    member = NodeIdentity.generate()
    nodes = []
    for name in ("a", "b"):
        (short_tmp / name).mkdir()
        node = NodeService(make_settings(short_tmp / name, trusted_keys=[member.public_key_hex]))
        await node.start()
        nodes.append(node)
    try:
        a, b = nodes
        body = sm.RangeRequest(vv={}).model_dump_json().encode()
        headers = sign_request(member, "POST", sr.state_sync_range.path, body,
                               a.identity.public_key_hex)  # type: ignore[union-attr]
        headers["Content-Type"] = "application/json"
        async with aiohttp.ClientSession() as session:
            answers = []
            for node in (a, b):
                address = node.listen_addresses()[1].removeprefix("tcp:")
                async with session.post(f"http://{address}{sr.state_sync_range.path}",
                                        data=body, headers=headers) as resp:
                    answers.append((resp.status, await resp.json()))
        assert answers[0][0] == 200, answers[0]
        assert answers[1][0] == 401, answers[1]
        assert "signed for another node" in answers[1][1]["message"]
    finally:
        for node in nodes:
            await node.stop()


async def test_the_typed_client_learns_and_pins_the_node_it_signs_for(short_tmp) -> None:
    node = NodeService(make_settings(short_tmp))
    await node.start()
    try:
        address = node.listen_addresses()[1].removeprefix("tcp:")
        async with NodeClient.tcp(address, node.identity) as client:  # type: ignore[arg-type]
            assert client.node_key is None
            await client.call(sr.state_sync_range, sm.RangeRequest(vv={}))
            assert client.node_key == node.identity.public_key_hex  # type: ignore[union-attr]
        from formation.api.client import NodeUnreachable

        async with NodeClient.tcp(address, node.identity,  # type: ignore[arg-type]
                                  node_id=NodeIdentity.generate().node_id) as wrong:
            with pytest.raises(NodeUnreachable, match="is not"):
                await wrong.call(routes.node_status, Empty())
    finally:
        await node.stop()
