"""The server's SSE writing of a handler's event iterator: keep-alives while nothing happens do
not end the stream, and a client that hangs up ends the subscription."""

from __future__ import annotations

import aiohttp
import pytest
from waiting import until

from formation.node import server
from formation.node.service import NodeService


async def test_keepalives_do_not_end_the_stream(node: NodeService,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """On main the keep-alive timeout cancelled the pending read, which closed the event
    generator: the first quiet period ended every stream."""
    monkeypatch.setattr(server, "SSE_KEEPALIVE_S", 0.05)
    connector = aiohttp.UnixConnector(path=str(node.settings.api.socket))
    async with aiohttp.ClientSession(connector=connector) as session, \
            session.get("http://node/v1/events?topic=probe-test") as resp:
        assert resp.status == 200
        assert await resp.content.readline() == b": formation event stream\n"
        keepalives = 0
        while keepalives < 3:  # three quiet periods in a row
            line = await resp.content.readline()
            assert line, "the stream ended after a quiet period"
            keepalives += line == b": keepalive\n"
        node.publish("probe-test", "ping", {"n": 1})
        seen = []
        while not any(line.startswith(b"data:") for line in seen):
            seen.append(await resp.content.readline())
            assert seen[-1], "the stream ended before the event"
        assert b'"kind":"ping"' in seen[-1]

    async def subscription_ended() -> bool:
        return not node.bus._subscribers

    await until(subscription_ended)
