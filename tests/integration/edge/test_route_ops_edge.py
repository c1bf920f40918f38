"""Route ops to the real engine: a state store (real SQLite) feeds the real Caddy (Debian's) in
namespaces the test creates (edge_lab.py; the backends are Python HTTP servers in namespaces
`b1` and `b2`, standing in for instances, named as such). A route.set is served once written;
the instance's new address (as a move reports it) is followed without a manual step; a stopped
instance serves nothing; route.remove ends the route."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from edge_lab import BACKEND_PORT, HOST, EdgeLab, edge_lab
from waiting import until

from formation.identity import NodeIdentity
from formation.node.edge.routes import Route
from formation.node.state.route_feed import RouteFeed, servable
from formation.node.state.store import StateStore

pytestmark = [pytest.mark.root, pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("ip", "nsenter", "caddy")),
    reason="needs root, iproute2, nsenter and caddy (scripts/system-packages.sh)")]

SPEC = {"image": "ab" * 32, "vcpus": 1, "memory_mb": 512, "disk_gb": 5,
        "ports": [f"{BACKEND_PORT}/tcp"]}


async def answers(lab: EdgeLab, body: str) -> None:
    async def seen() -> bool:
        return await lab.get() == (200, body)

    await until(seen, timeout_s=15, what=f"the edge answering {body!r} for {HOST}")


async def test_route_ops_reach_the_engine_and_follow_the_instance() -> None:
    work = Path(tempfile.mkdtemp(prefix="fr-", dir="/tmp"))
    store = await StateStore.open(work / "state.db", NodeIdentity.generate())
    try:
        async with edge_lab() as lab:
            await lab.start_backend("b1")
            await lab.start_backend("b2")
            await lab.engine.start([])
            applied: list[list[Route]] = []

            async def apply(routes: list[Route]) -> None:
                kept, _left_out = servable([], routes)
                await lab.engine.apply(kept)
                applied.append(kept)

            feed = asyncio.create_task(RouteFeed(store, apply).run())
            await store.create_network("lab", "10.42.0.0/16")
            web = (await store.append("instance.create", {"name": "web", "spec": SPEC})).id.hex()
            place = (await store.append("instance.place", {
                "instance": web, "node": store.identity.public_key_hex})).id.hex()

            async def report(address: str, state: str = "running") -> None:
                await store.append("instance.status", {
                    "instance": web, "placement": place,
                    "observed": {"state": state, "address": address}})

            await report(lab.backend("b1").address)
            route = await store.append("route.set", {
                "host": HOST, "protocol": "http", "port": BACKEND_PORT, "instances": [web]})
            await answers(lab, "b1")
            # the instance now answers at another address: the edge follows the view
            await report(lab.backend("b2").address)
            await answers(lab, "b2")
            await report(lab.backend("b2").address, "stopped")
            await until(lambda: lab.engine.routes and not lab.engine.routes[0].backends,
                        what="the stopped instance out of the route")
            assert (await lab.get() or (0, ""))[0] == 503
            await store.append("route.remove", {"route": route.id.hex()})
            await until(lambda: lab.engine.routes == [], what="the removed route gone")
            feed.cancel()
            with pytest.raises(asyncio.CancelledError):
                await feed
            assert len(applied) >= 4  # served, moved, stopped, removed: each its own apply
    finally:
        await store.close()
        shutil.rmtree(work, ignore_errors=True)
