"""The edge started and stopped by the `edge` capability (node.capabilities), not the setting:
one node service on loopback with the state and edge parts, `edge.enabled` false. The admin's
op giving this node `edge` starts the real engine (Caddy answers on its port); the op taking it
away stops it (the port refuses again). No restart, no config change."""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import pytest
from ports import free_port
from settings_factory import make_settings
from waiting import until

from formation.node.edge.component import EdgeComponent
from formation.node.edge.settings import EdgeSettings
from formation.node.service import NodeService
from formation.node.state.component import StateComponent

pytestmark = pytest.mark.skipif(not shutil.which("caddy"), reason="needs caddy "
                                "(scripts/system-packages.sh)")


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


async def test_the_edge_capability_starts_and_stops_the_engine(short_tmp: Path) -> None:
    http_port = free_port()
    settings = EdgeSettings(enabled=False, listen=["127.0.0.1"], http_port=http_port,
                            https_port=free_port(), run_dir=short_tmp / "edge")
    state = StateComponent()
    edge = EdgeComponent(settings=settings, state=state)
    service = NodeService(make_settings(short_tmp), components=[state, edge])
    try:
        await service.start()
        store = state.require_store()
        await store.create_network("lab", "10.42.0.0/16")
        me = store.identity.public_key_hex
        assert edge.engine is None and not await asyncio.to_thread(answers, http_port)

        await store.append("node.capabilities", {"node": me, "capabilities": ["builder"]})
        await store.append("node.capabilities", {"node": me, "capabilities": ["edge"]})
        await until(lambda: asyncio.to_thread(answers, http_port), timeout_s=20,
                    what="the engine started by the edge capability")
        # the port opens a moment before the engine's start returns (its admin API is polled)
        await until(lambda: edge.engine is not None, timeout_s=20, what="the engine kept")
        assert [c.name for c in edge.health()] == ["edge"]

        await store.append("node.capabilities", {"node": me, "capabilities": []})
        await until(lambda: edge.engine is None, timeout_s=20,
                    what="the engine stopped when the capability was taken away")
        await until(lambda: asyncio.to_thread(lambda: not answers(http_port)), timeout_s=20,
                    what="the edge's port closed")
        assert edge.health() == []
    finally:
        await service.stop()
