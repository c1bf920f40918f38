"""API round trips through the real client over a real unix socket, one per endpoint."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest
from waiting import until

from formation.api import routes
from formation.api.client import ApiError, NodeClient, NodeUnreachable
from formation.api.models import ProbeRequest
from formation.node.service import NodeService


async def test_node_status_over_unix_socket(node: NodeService, client: NodeClient) -> None:
    status = await client.call(routes.node_status)
    assert status.identity.node_id == node.identity.node_id
    assert status.identity.public_key == node.identity.public_key_hex
    assert status.identity.wireguard_public_key == node.identity.wireguard_public_key
    assert status.name == "test-node"
    assert status.listen[0] == f"unix:{node.settings.api.socket}"
    assert status.listen[1].startswith("tcp:127.0.0.1:")
    assert status.resources.cpus >= 1
    assert status.uptime_s >= 0


async def test_health_is_ok(client: NodeClient) -> None:
    health = await client.call(routes.health)
    assert health.status == "ok"
    assert {check.name for check in health.checks} >= {"api", "data_dir"}


async def test_config_is_served_without_secrets(node: NodeService, client: NodeClient) -> None:
    view = await client.call(routes.get_config)
    assert view.config_file is None
    assert view.settings["name"] == "test-node"
    assert view.settings["api"]["socket"] == str(node.settings.api.socket)
    assert view.settings["probe"]["boot_test"] is False
    assert node.identity.seed.hex() not in view.model_dump_json()


async def test_probe_then_get_capabilities(client: NodeClient) -> None:
    probed = await client.call(routes.probe_capabilities, ProbeRequest())
    assert probed.probed_at is not None
    names = {item.name for item in probed.items}
    assert names >= {"kvm", "qemu", "cloud_hypervisor", "wireguard", "ip_forwarding", "cpus",
                     "memory", "disk"}
    for item in probed.items:
        assert item.ok or item.reason, f"{item.name} is 'no' without a reason"
    current = await client.call(routes.get_capabilities)
    assert current == probed


async def test_events_stream_delivers_published_events(node: NodeService,
                                                       client: NodeClient) -> None:
    received = []

    async def listen() -> None:
        async for event in client.events(topic="test"):
            received.append(event)
            if len(received) == 2:
                return

    listener = asyncio.create_task(listen())
    # the stream subscribed before publishing
    await until(lambda: node.bus._subscribers, 2, 0.01, what="the stream's subscription")
    node.publish("other", "ignored", {})
    node.publish("test", "first", {"n": 1})
    node.publish("test", "second", {"n": 2})
    await asyncio.wait_for(listener, 10)
    assert [(e.topic, e.kind, e.data) for e in received] == [
        ("test", "first", {"n": 1}), ("test", "second", {"n": 2})]
    assert received[0].seq < received[1].seq


async def test_events_replay_with_since(node: NodeService, client: NodeClient) -> None:
    first = node.bus.publish("replay", "a", {})
    node.bus.publish("replay", "b", {})
    node.bus.publish("replay", "c", {})
    seen = []
    async for event in client.events(since=first.seq, topic="replay"):
        seen.append(event.kind)
        if len(seen) == 2:
            break
    assert seen == ["b", "c"]


async def test_event_stream_ends_when_the_node_stops(node_settings) -> None:
    service = NodeService(node_settings)
    await service.start()
    async with NodeClient.unix(node_settings.api.socket) as client:
        stream = client.events(since=0)
        first = await anext(stream)
        assert first.kind == "started"
        await service.stop()
        rest = [event async for event in stream]
        assert all(event.seq > first.seq for event in rest)


async def test_invalid_query_is_a_400_naming_the_field(node: NodeService) -> None:
    async with NodeClient.unix(node.settings.api.socket) as client:
        with pytest.raises(ApiError) as info:
            await client.raw_get("/v1/events?since=-1")
        assert info.value.status == 400 and "since" in str(info.value)
        with pytest.raises(ApiError) as info:
            await client.raw_get("/v1/events?bogus=1")
        assert info.value.status == 400 and "bogus" in str(info.value)


async def test_unknown_route_is_a_404_error_body(client: NodeClient) -> None:
    with pytest.raises(ApiError) as info:
        await client.raw_get("/v1/nothing-here")
    assert info.value.status == 404 and info.value.body.error == "not_found"


async def test_invalid_body_is_a_400_naming_the_field(node: NodeService) -> None:
    import aiohttp

    connector = aiohttp.UnixConnector(path=str(node.settings.api.socket))
    async with aiohttp.ClientSession(connector=connector) as session:
        cases = ((b'{"only": 3}', "only"), (b'{"nope": 1}', "nope"), (b"[", "body"),
                 (b'{"only": ["kvm", "warp_drive"]}', "only.1"))
        for body, field in cases:
            async with session.post("http://node/v1/capabilities/probe", data=body) as resp:
                error = await resp.json()
            assert resp.status == 400, error
            assert error["error"] == "invalid_request" and field in error["message"]


async def test_mutating_unix_request_logs_the_peer_credentials(client: NodeClient) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("formation.node.server")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        await client.call(routes.probe_capabilities, ProbeRequest())
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    callers = [r.fields["caller"] for r in records if getattr(r, "fields", {}).get("caller")]
    assert f"unix:pid={os.getpid()},uid={os.getuid()}" in callers


async def test_no_node_is_a_clear_error(short_tmp) -> None:
    async with NodeClient.unix(short_tmp / "absent.sock") as client:
        with pytest.raises(NodeUnreachable, match="is `formation node` running"):
            await client.call(routes.health)


async def test_oversized_body_is_a_413_error_body(node: NodeService) -> None:
    import aiohttp

    connector = aiohttp.UnixConnector(path=str(node.settings.api.socket))
    async with aiohttp.ClientSession(connector=connector) as session:
        body = b'{"only": null, "pad": "' + b"x" * (2 << 20) + b'"}'
        async with session.post("http://node/v1/capabilities/probe", data=body) as resp:
            error = await resp.json()
    assert resp.status == 413
    assert error["error"] == "request_entity_too_large"


async def test_client_leaving_an_event_stream_is_not_an_error(node: NodeService) -> None:
    """A listener that hangs up is the normal end of a stream: no 'request failed', no 500,
    and its subscription is gone once the node notices."""
    import aiohttp

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("formation.node.server")
    logger.addHandler(handler)
    try:
        connector = aiohttp.UnixConnector(path=str(node.settings.api.socket))
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get("http://node/v1/events?since=0") as resp:
                assert await resp.content.readline() == b": formation event stream\n"
        def unsubscribed() -> bool:  # each publish lets the server notice the hang-up
            node.publish("test", "after-hangup", {})
            return not node.bus._subscribers

        await until(unsubscribed, 5, 0.01, what="the hung-up stream unsubscribed")
    finally:
        logger.removeHandler(handler)
    assert not [r for r in records if r.levelno >= logging.ERROR], records
    async with NodeClient.unix(node.settings.api.socket) as client:
        metrics = (await client.raw_get("/metrics")).decode()
    assert 'endpoint="events",status="500"' not in metrics
