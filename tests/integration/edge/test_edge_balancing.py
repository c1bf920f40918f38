"""The edge's data path on the real engine (Caddy, Debian's): a route balances over two backends
in namespaces the test creates (edge_lab.py); a killed backend is out within the health
interval and no request fails after that; it is back once restarted; route changes reach the
running engine by its admin API without failing a request; a crashed engine is restarted with
the newest routes; malformed routes are refused with a one-line reason, the engine unchanged."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import time
from collections.abc import AsyncIterator

import pytest
from edge_lab import HEALTH_INTERVAL_S, HOST, EdgeLab, edge_lab
from waiting import until

from formation.node.edge.engine import EngineError
from formation.node.edge.routes import Backend, Route

pytestmark = [pytest.mark.root, pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("ip", "nsenter", "caddy")),
    reason="needs root, iproute2, nsenter and caddy (scripts/system-packages.sh)")]

Reply = tuple[float, tuple[int, str] | None]  # when it was sent, (status, body) or None


async def serving(lab: EdgeLab, *names: str) -> None:
    """Waits until every backend in `names` has answered through the edge."""
    seen: set[str] = set()

    async def all_seen() -> bool:
        reply = await lab.get()
        if reply and reply[0] == 200:
            seen.add(reply[1])
        return seen >= set(names)

    await until(all_seen, timeout_s=15, what=f"the edge serving from {names}",
                context=lambda: f"seen: {seen}")


@contextlib.asynccontextmanager
async def steady_client(lab: EdgeLab) -> AsyncIterator[list[Reply]]:
    """Requests back to back until the block ends: yields the list of (time, reply)."""
    replies: list[Reply] = []
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            replies.append((time.monotonic(), await lab.get()))

    task = asyncio.create_task(loop())
    try:
        yield replies
    finally:
        stop.set()
        await task


async def test_route_balances_over_both_backends() -> None:
    async with edge_lab() as lab:
        await lab.start_backend("b1")
        await lab.start_backend("b2")
        await lab.engine.start([lab.route("b1", "b2")])
        await serving(lab, "b1", "b2")
        bodies = [reply[1] for reply in [await lab.get() for _ in range(20)] if reply]
        assert len(bodies) == 20
        # round robin: each backend takes every other request
        assert abs(bodies.count("b1") - bodies.count("b2")) <= 1, bodies
        assert lab.engine.metrics.routes["www"].requests >= 20


async def test_killed_backend_is_out_within_the_health_interval_and_back_when_restarted(
) -> None:
    async with edge_lab() as lab:
        await lab.start_backend("b1")
        await lab.start_backend("b2")
        await lab.engine.start([lab.route("b1", "b2")])
        await serving(lab, "b1", "b2")
        async with steady_client(lab) as replies:
            await until(lambda: len(replies) > 10, what="requests before the kill")
            killed_at = time.monotonic()
            await lab.kill_backend("b1")
            b1 = lab.backend("b1").dial
            out_s = await _unhealthy_after(lab, b1)
            settled = killed_at + HEALTH_INTERVAL_S * 2 + 1.0
            await until(lambda: replies[-1][0] > settled + 2.0, timeout_s=15,
                        what="two seconds of requests after the health interval")
        after = [reply for at, reply in replies if at > settled]
        assert after and all(reply == (200, "b2") for reply in after), after
        # Caddy 2.6 refreshes its health gauge every 10 s, whatever the check interval: the
        # traffic above is what shows the backend out within the interval
        assert out_s <= 10 + HEALTH_INTERVAL_S * 2 + 1.0
        await lab.start_backend("b1")
        await serving(lab, "b1")  # back in rotation without anyone telling the edge


async def _unhealthy_after(lab: EdgeLab, dial: str) -> float:
    start = time.monotonic()

    async def out() -> bool:
        return (await lab.engine.upstreams_healthy()).get(dial) is False

    await until(out, timeout_s=15, what=f"{dial} marked unhealthy by the engine")
    return time.monotonic() - start


async def test_route_changes_reach_the_running_engine_without_failed_requests() -> None:
    async with edge_lab() as lab:
        await lab.start_backend("b1")
        await lab.start_backend("b2")
        await lab.engine.start([lab.route("b1")])
        await serving(lab, "b1")
        pid = lab.engine.process.pid if lab.engine.process else None
        slow = asyncio.create_task(lab.get(path="/slow"))  # in flight across the changes
        await until(lambda: in_flight(lab), what="the slow request in flight at the backend")
        async with steady_client(lab) as replies:
            # a backend added: one route's object, by its @id
            assert await lab.engine.apply([lab.route("b1", "b2")]) == ["PATCH /id/edge-route-www"]
            assert not slow.done()
            await serving(lab, "b2")
            # a second route: the server's route list
            api = lab.route("b2", host="api.example.test", route="api")
            assert await lab.engine.apply([lab.route("b2"), api]) == [
                "PATCH /config/apps/http/servers/edge_http"]
            await until(lambda: lab.get("api.example.test"), what="the new route served")
            assert await lab.engine.apply([lab.route("b2"), api]) == []  # nothing changed

            async def enough() -> bool:  # a loaded machine may have fit only 2 in the changes
                return len(replies) >= 4

            await until(enough, what="the steady client's fourth answer")
        # Every answer is a 200. A new connection arriving at the instant Caddy 2.6 switches
        # its config can be refused (seen once in CI: one refused connect, under 5 ms, then
        # every request served): at most one such refusal, never a wrong or error answer.
        assert replies and all(reply is None or reply[0] == 200 for _, reply in replies), replies
        refused = [r for r in replies if r[1] is None]
        assert len(refused) <= 1 and len(replies) - len(refused) >= 3, refused
        assert await lab.get("api.example.test") == (200, "b2")
        assert lab.engine.process is not None and lab.engine.process.pid == pid  # no restart
        assert await slow == (200, "b1")  # began before the changes, finished after them


async def in_flight(lab: EdgeLab) -> int:
    """Requests the engine has in flight to its backends (its admin API's upstream status)."""
    upstreams = json.loads(await lab.engine.admin.request("GET", "/reverse_proxy/upstreams"))
    return sum(u.get("num_requests", 0) for u in upstreams)


async def test_crashed_engine_is_restarted_with_the_newest_routes() -> None:
    async with edge_lab() as lab:
        await lab.start_backend("b1")
        await lab.start_backend("b2")
        await lab.engine.start([lab.route("b1")])
        await lab.engine.apply([lab.route("b2")])
        await serving(lab, "b2")
        assert lab.engine.process is not None
        lab.engine.process.kill()
        await until(lambda: lab.engine.starts == 2, what="the engine started again")
        await until(lambda: lab.get(), timeout_s=15, what="the restarted engine answering")
        assert {(await lab.get()) for _ in range(4)} == {(200, "b2")}


async def test_malformed_routes_are_refused_with_one_line_and_nothing_changes() -> None:
    async with edge_lab() as lab:
        await lab.start_backend("b1")
        await lab.engine.start([lab.route("b1")])
        await serving(lab, "b1")
        before = lab.engine.applied
        bad = {
            "bad_host..example": "host: expected a DNS name",
            "-bad.example.test": "host: expected a DNS name",
        }
        for host, reason in bad.items():
            with pytest.raises(EngineError) as refused:
                await lab.engine.apply([lab.route("b1", host=host)])
            assert reason in str(refused.value) and "\n" not in str(refused.value)
        with pytest.raises(EngineError, match=r"backends\[0\]\.port: expected a TCP port"):
            await lab.engine.apply([Route(HOST, "http", None, (Backend("198.18.0.2", 0),), "www")])
        with pytest.raises(EngineError, match="port: only for tcp routes"):
            await lab.engine.apply([Route(HOST, "http", 8080, (lab.backend("b1"),), "www")])
        with pytest.raises(EngineError, match="layer4"):
            await lab.engine.apply([Route(HOST, "tcp", 5432, (lab.backend("b1"),), "db")])
        assert lab.engine.applied == before
        assert await lab.get() == (200, "b1")
