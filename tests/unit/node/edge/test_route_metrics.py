"""Per-route metrics from the engine's access-log lines, exported for the node's /metrics."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from waiting import until

from formation.node.edge.metrics import (
    LINE_LIMIT,
    AccessLogSink,
    EdgeCollector,
    RouteMetrics,
    upstreams_healthy,
)


def line(logger: str, status: int, duration: float, size: int, length: str | None = None) -> bytes:
    headers = {"Content-Length": [length]} if length else {}
    return json.dumps({"logger": logger, "status": status, "duration": duration, "size": size,
                       "request": {"headers": headers}}).encode() + b"\n"


def test_lines_add_up_per_route_and_export() -> None:
    metrics = RouteMetrics()
    metrics.keep_only({"www", "api"})
    metrics.observe_line(line("http.log.access.edge.route.www", 200, 0.002, 100, "7"))
    metrics.observe_line(line("http.log.access.edge.route.www", 502, 0.3, 10))
    metrics.observe_line(line("http.log.access.edge.route.api", 200, 0.02, 5))
    metrics.observe_line(line("http.log.access.other", 200, 0.02, 5))  # not a route's logger
    metrics.observe_line(b"not json\n")
    metrics.observe_line(line("http.log.access.edge.route.made-up", 200, 0.02, 5))  # no route
    metrics.observe_line(b'{"logger": "http.log.access.edge.route.www", "status": "x"}\n')
    metrics.observe_line(b'[1, 2]\n')
    www = metrics.routes["www"]
    assert (www.requests, www.errors, www.bytes_out, www.bytes_in) == (2, 1, 110, 7)
    assert set(metrics.routes) == {"www", "api"}
    registry = CollectorRegistry()
    registry.register(EdgeCollector(metrics, {"10.42.0.5:8000": False}))
    text = generate_latest(registry).decode()
    assert 'formation_edge_route_requests_total{route="www"} 2.0' in text
    assert 'formation_edge_route_errors_total{route="www"} 1.0' in text
    assert 'formation_edge_route_request_seconds_bucket{le="0.0025",route="www"} 1.0' in text
    assert 'formation_edge_route_request_seconds_count{route="www"} 2.0' in text
    assert 'formation_edge_backend_healthy{backend="10.42.0.5:8000"} 0.0' in text
    metrics.keep_only({"api"})
    assert set(metrics.routes) == {"api"}


def test_backend_health_from_caddys_metrics() -> None:
    text = ('# HELP caddy_reverse_proxy_upstreams_healthy Health status\n'
            'caddy_reverse_proxy_upstreams_healthy{upstream="10.0.0.1:80"} 1\n'
            'caddy_reverse_proxy_upstreams_healthy{upstream="[fd00::1]:80"} 0\n')
    assert upstreams_healthy(text) == {"10.0.0.1:80": True, "[fd00::1]:80": False}


async def test_sink_skips_overlong_and_hostile_lines_and_counts_the_next(short_tmp: Path) -> None:
    """Whatever connects to the access-log socket, memory stays bounded: an overlong line is
    skipped, not buffered, unknown routes are not counted, and the next good line counts."""
    metrics = RouteMetrics()
    metrics.keep_only({"www"})
    sink = AccessLogSink(short_tmp / "access.sock", metrics)
    await sink.start()
    try:
        assert (short_tmp / "access.sock").stat().st_mode & 0o777 == 0o600
        _reader, writer = await asyncio.open_unix_connection(str(short_tmp / "access.sock"))
        writer.write(b"{" + b"x" * (LINE_LIMIT * 2) + b"\n")
        for index in range(1000):
            writer.write(line(f"http.log.access.edge.route.flood{index}", 200, 0.001, 1))
        writer.write(line("http.log.access.edge.route.www", 200, 0.001, 3))
        await writer.drain()
        await until(lambda: "www" in metrics.routes, what="the good line counted")
        assert set(metrics.routes) == {"www"} and metrics.routes["www"].bytes_out == 3
        writer.close()
    finally:
        await sink.stop()
