"""Request signatures over a real TCP socket: every way to get it wrong is a 401 with a reason,
no header is a credential, and the unix socket is authorized by its file permissions alone.
The signed route used is a member's (anti-entropy's range request): the node's own key and a key
the config trusts may call it."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from settings_factory import make_settings

from formation.api import ca_routes, routes, state_routes
from formation.api.auth import H_TIMESTAMP, canonical
from formation.api.auth import sign_request as sign_for
from formation.api.client import ApiError, NodeClient
from formation.api.models import ProbeRequest
from formation.api.state_models import RangeRequest, RangeResult
from formation.identity import NodeIdentity
from formation.node.service import NodeService

PROBE = state_routes.state_sync_range.path
BODY = RangeRequest(vv={}, limit=10).model_dump_json().encode()
NODE_KEY: list[str] = []  # the node under test's public key, which requests are signed for


def sign_request(identity: NodeIdentity, method: str, target: str, body: bytes) -> dict[str, str]:
    return sign_for(identity, method, target, body, NODE_KEY[0])


@pytest.fixture
def stranger() -> NodeIdentity:
    return NodeIdentity.generate()


@pytest.fixture
def friend() -> NodeIdentity:
    return NodeIdentity.generate()


@pytest.fixture
async def node(short_tmp, friend: NodeIdentity) -> AsyncIterator[NodeService]:
    service = NodeService(make_settings(short_tmp, trusted_keys=[friend.public_key_hex]))
    await service.start()
    NODE_KEY[:] = [service.identity.public_key_hex]
    yield service
    await service.stop()


@pytest.fixture
async def http(node: NodeService) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    address = node.listen_addresses()[1].removeprefix("tcp:")
    async with aiohttp.ClientSession() as session:
        yield session, f"http://{address}"


async def post(http, headers: dict[str, str], body: bytes = BODY, path: str = PROBE):
    session, base = http
    headers = {"Content-Type": "application/json", **headers}
    async with session.post(base + path, data=body, headers=headers) as resp:
        return resp.status, json.loads(await resp.read())


def refused(status: int, body: dict, reason: str) -> None:
    assert status == 401, body
    assert body["error"] == "unauthorized"
    assert reason in body["message"]


async def test_correctly_signed_request_passes(http, node: NodeService) -> None:
    status, body = await post(http, sign_request(node.identity, "POST", PROBE, BODY))
    assert status == 200, body
    assert RangeResult.model_validate(body).batch.count == 0


async def test_trusted_key_from_config_passes(http, friend: NodeIdentity) -> None:
    status, body = await post(http, sign_request(friend, "POST", PROBE, BODY))
    assert status == 200, body


async def test_unsigned_request_is_refused(http) -> None:
    refused(*await post(http, {}), "unsigned request")


async def test_tampered_body_is_refused(http, node: NodeService) -> None:
    headers = sign_request(node.identity, "POST", PROBE, BODY)
    tampered = RangeRequest(vv={}, limit=11).model_dump_json().encode()
    refused(*await post(http, headers, tampered), "bad signature")


async def test_tampered_path_is_refused(http, node: NodeService) -> None:
    headers = sign_request(node.identity, "POST", "/v1/other", BODY)
    refused(*await post(http, headers), "bad signature")


async def test_replayed_nonce_is_refused(http, node: NodeService) -> None:
    headers = sign_request(node.identity, "POST", PROBE, BODY)
    status, _ = await post(http, headers)
    assert status == 200
    refused(*await post(http, headers), "replayed request")


@pytest.mark.parametrize("offset_s", [-120.0, 120.0])
async def test_stale_or_future_timestamp_is_refused(http, node: NodeService,
                                                    offset_s: float) -> None:
    """Signed correctly, but outside the window (api.clock_skew_s, 60 s here)."""
    ident = node.identity
    stamp = f"{time.time() + offset_s:.3f}"
    nonce = "ab" * 16
    sig = ident.sign(canonical("POST", PROBE, BODY, stamp, nonce, ident.public_key_hex,
                               ident.public_key_hex))
    headers = {"X-Formation-Key": ident.public_key_hex, H_TIMESTAMP: stamp,
               "X-Formation-Nonce": nonce, "X-Formation-Node": ident.public_key_hex,
               "X-Formation-Signature": sig.hex()}
    refused(*await post(http, headers), "stale request")


async def test_unknown_key_is_refused(http, stranger: NodeIdentity) -> None:
    refused(*await post(http, sign_request(stranger, "POST", PROBE, BODY)), "unknown key")


async def test_signature_by_another_key_than_claimed_is_refused(
    http, node: NodeService, stranger: NodeIdentity
) -> None:
    headers = sign_request(stranger, "POST", PROBE, BODY)
    headers["X-Formation-Key"] = node.identity.public_key_hex
    refused(*await post(http, headers), "bad signature")


async def test_malformed_headers_are_refused(http, node: NodeService) -> None:
    headers = sign_request(node.identity, "POST", PROBE, BODY)
    refused(*await post(http, {**headers, H_TIMESTAMP: "yesterday"}), "malformed timestamp")
    refused(*await post(http, {**headers, "X-Formation-Nonce": "short"}), "malformed nonce")
    refused(*await post(http, {**headers, "X-Formation-Key": "zz"}), "bad signature")
    refused(*await post(http, {**headers, "X-Formation-Signature": "00"}), "bad signature")


@pytest.mark.parametrize("spoof", [
    {"Host": "127.0.0.1"},
    {"Host": "localhost"},
    {"X-Forwarded-For": "127.0.0.1"},
    {"X-Real-IP": "127.0.0.1", "Forwarded": "for=127.0.0.1"},
])
async def test_localhost_headers_are_not_credentials(http, spoof: dict[str, str]) -> None:
    refused(*await post(http, spoof), "unsigned request")


async def test_every_route_in_the_served_document_needs_a_signature_over_tcp(http) -> None:
    """Walks /openapi.json as served: every mutating route (and every GET not marked public)
    refuses an unsigned request. A route added later is covered without touching this test."""
    session, base = http
    async with session.get(base + routes.OPENAPI_PATH) as resp:
        document = await resp.json()
    checked = []
    for path, operations in document["paths"].items():
        target = path.replace("{", "").replace("}", "")  # path parameters become literal names
        for method, operation in operations.items():
            if method.upper() == "GET" and operation["security"] == []:
                continue
            async with session.request(method.upper(), base + target, data=b"{}",
                                       headers={"Content-Type": "application/json"}) as resp:
                body = await resp.json()
            assert resp.status == 401, (method, path, body)
            assert body["error"] == "unauthorized"
            checked.append((method.upper(), path))
    mutating = {(e.method, e.path) for e in routes.ENDPOINTS if e.mutating}
    assert mutating, "there is at least one mutating route to check"
    assert mutating <= set(checked)


async def test_public_routes_need_no_signature(http) -> None:
    session, base = http
    for path in sorted(routes.PUBLIC_PATHS):
        async with session.get(base + path) as resp:
            if path == ca_routes.ca_root.path:  # a network without a CA yet: answered, 404
                assert resp.status == 404 and "ca init" in await resp.text(), path
            else:
                assert resp.status == 200, path


async def test_typed_tcp_client_signs_every_call(node: NodeService) -> None:
    address = node.listen_addresses()[1].removeprefix("tcp:")
    async with NodeClient.tcp(address, node.identity) as client:
        status = await client.call(routes.node_status)
        assert status.identity.node_id == node.identity.node_id
        answer = await client.call(state_routes.state_sync_range, RangeRequest(vv={}))
        assert answer.batch.count == 0
        with pytest.raises(ApiError) as local_only:  # probing boots a guest: local callers only
            await client.call(routes.probe_capabilities, ProbeRequest(only=None))
        assert local_only.value.status == 403
    async with NodeClient.tcp(address, NodeIdentity.generate()) as client:
        with pytest.raises(ApiError) as info:
            await client.call(routes.node_status)
        assert info.value.status == 401 and "unknown key" in str(info.value)


async def test_auth_failures_are_counted_by_reason(http, node: NodeService) -> None:
    await post(http, {})
    session, base = http
    async with session.get(base + routes.METRICS_PATH) as resp:
        text = await resp.text()
    assert 'formation_api_auth_failures_total{reason="unsigned request"} 1.0' in text


async def test_unix_socket_needs_no_signature_and_is_0660(node: NodeService) -> None:
    sock = node.settings.api.socket
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o660
    async with NodeClient.unix(sock) as client:
        caps = await client.call(routes.probe_capabilities, ProbeRequest(only=None))
    assert caps.probed_at is not None
