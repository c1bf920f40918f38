"""A standalone node answers before its slow parts (the mesh, DNS) have started: they start
after READY, their endpoints answer 503 and their health says "starting" until then, and one
that fails to start takes the service down as it would have at start.

`LatePart` is a part of the node written for this test, not a stand-in for anything outside:
the ordering is the service's own logic, and the real mesh is started this way in
tests/integration/test_mesh_component.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from settings_factory import make_settings

from formation.api.client import ApiError, NodeClient
from formation.api.mesh_routes import mesh_status
from formation.api.routes import health
from formation.errors import FormationError
from formation.node.net.component import MeshComponent
from formation.node.service import NodeService


class LatePart:
    name = "late"
    after_ready = True

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.started = asyncio.Event()
        self.stopped = False

    async def start(self, service: NodeService) -> None:
        if self.fail:
            raise FormationError("late: cannot start")
        self.started.set()

    async def stop(self) -> None:
        self.stopped = True

    def api_handlers(self) -> None:
        return None

    def health(self):
        from formation.api.models import HealthCheck

        return [HealthCheck(name="late", ok=True, detail="running")]


class EarlyPart(LatePart):
    name = "early"
    after_ready = False


def _check(health_body, name: str):
    return next(c for c in health_body.checks if c.name == name)


async def test_deferred_parts_start_after_the_api_answers(short_tmp: Path) -> None:
    late, early = LatePart(), EarlyPart()
    service = NodeService(make_settings(short_tmp), components=[late, early])
    await service.start(defer=True)
    try:
        assert early.started.is_set() and not late.started.is_set()
        async with NodeClient.unix(service.settings.api.socket) as client:
            before = await client.call(health)
            assert _check(before, "late").detail == "starting" and not _check(before, "late").ok
            assert before.status == "degraded"
            await service.start_deferred()
            after = await client.call(health)
        assert late.started.is_set() and service.pending_components == []
        assert _check(after, "late").detail == "running" and after.status == "ok"
    finally:
        await service.stop()
    assert late.stopped and early.stopped


async def test_a_plain_start_starts_every_part(short_tmp: Path) -> None:
    late = LatePart()
    service = NodeService(make_settings(short_tmp), components=[late])
    await service.start()
    try:
        assert late.started.is_set() and service.pending_components == []
    finally:
        await service.stop()


async def test_a_deferred_part_that_fails_stops_the_others(short_tmp: Path) -> None:
    early, late = EarlyPart(), LatePart(fail=True)
    service = NodeService(make_settings(short_tmp), components=[early, late])
    await service.start(defer=True)
    try:
        with pytest.raises(FormationError, match="late: cannot start"):
            await service.start_deferred()
        assert early.stopped
    finally:
        await service.stop()


async def test_the_mesh_endpoint_says_it_is_starting(short_tmp: Path) -> None:
    """The mesh part not started yet (it is deferred): 503 with a reason, not a crash."""
    service = NodeService(make_settings(short_tmp, mesh={"enabled": True}),
                          components=[MeshComponent()])
    await service.start(defer=True)
    try:
        async with NodeClient.unix(service.settings.api.socket) as client:
            with pytest.raises(ApiError) as raised:
                await client.call(mesh_status)
        assert raised.value.status == 503 and "starting" in str(raised.value)
    finally:
        service.pending_components.clear()  # never started: this test creates no interface
        await service.stop()
