"""The edge as a node part on loopback: a node service running only the edge part (given its
settings, as the lead's NodeSettings.edge will) serves a route through the real engine, puts
each route's requests, errors, latency and bytes and each backend's health on the node's
/metrics, and reports the engine in GET /v1/health."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import urllib.request
from pathlib import Path

import pytest
from ports import free_port
from prometheus_client.parser import text_string_to_metric_families
from settings_factory import make_settings
from waiting import until

from formation.api import routes as api
from formation.api.client import NodeClient
from formation.node.edge.component import EdgeComponent
from formation.node.edge.routes import Backend, Route
from formation.node.edge.settings import EdgeSettings
from formation.node.service import NodeService

pytestmark = [pytest.mark.root, pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("caddy"), reason="needs root and caddy")]


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def get(port: int, host: str) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


async def test_node_part_serves_and_exports_route_metrics(short_tmp: Path) -> None:
    site = short_tmp / "site"
    site.mkdir()
    (site / "index.html").write_text("hello from the backend\n")
    backend_port, http_port = free_port(), free_port()
    backend = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "http.server", str(backend_port), "--bind", "127.0.0.1",
        "--directory", str(site), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    settings = EdgeSettings(enabled=True, listen=["127.0.0.1"], http_port=http_port,
                            https_port=free_port(), run_dir=short_tmp / "edge")
    part = EdgeComponent(settings=settings, routes=[
        Route("www.example.test", "http", None, (Backend("127.0.0.1", backend_port),), "www"),
        Route("down.example.test", "http", None, (), "down")])
    service = NodeService(make_settings(short_tmp), components=[part])
    try:
        await service.start()
        status, body = await until(lambda: asyncio.to_thread(get, http_port, "www.example.test"),
                                   what="the route served")
        assert (status, body) == (200, b"hello from the backend\n")
        for _ in range(4):
            await asyncio.to_thread(get, http_port, "www.example.test")
        assert (await asyncio.to_thread(get, http_port, "down.example.test"))[0] == 503
        async with NodeClient.unix(service.settings.api.socket) as client:
            async def counted() -> dict[tuple[str, tuple], float] | None:
                found = samples((await client.raw_get(api.METRICS_PATH)).decode())
                www = found.get(("formation_edge_route_requests_total", (("route", "www"),)))
                down = found.get(("formation_edge_route_errors_total", (("route", "down"),)))
                return found if www == 5 and down == 1 else None

            found = await until(counted, what="the edge's requests on /metrics")
            assert found[("formation_edge_route_response_bytes_total", (("route", "www"),))] \
                == 5 * len(b"hello from the backend\n")
            assert found[("formation_edge_route_request_seconds_count", (("route", "www"),))] == 5
            assert found[("formation_edge_route_errors_total", (("route", "www"),))] == 0
            health = await client.call(api.health)
            edge = next(c for c in health.checks if c.name == "edge")
            assert edge.ok and "2 route(s)" in edge.detail
    finally:
        await service.stop()
        backend.kill()
        await backend.wait()
