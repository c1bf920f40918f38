"""Per-route metrics: requests, errors, latency and bytes, measured by the engine.

Caddy 2.6 measures each request (status, duration, bytes) in its access log, and its
Prometheus metrics are per server and handler, not per host; so the engine logs each route to
a logger named after it and streams the JSON lines to a unix socket the node listens on
(`AccessLogSink`). The node only adds them up (`RouteMetrics`) and exports them through a
prometheus_client collector the node's /metrics registry takes (`EdgeCollector`). Backend
health comes from Caddy's own /metrics (`caddy_reverse_proxy_upstreams_healthy`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from formation.node.edge.caddy_config import ACCESS_LOGGER, LOGGER_PREFIX

log = logging.getLogger(__name__)

BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
LINE_LIMIT = 1 << 20  # an access-log line longer than this is skipped, not buffered
_PREFIX = f"{ACCESS_LOGGER}.{LOGGER_PREFIX}"


@dataclass
class RouteCounters:
    requests: int = 0
    errors: int = 0  # answered 5xx (by the backend or by the engine: no backend, timeout)
    bytes_out: int = 0  # response bodies
    bytes_in: int = 0  # request bodies (their Content-Length)
    duration_sum_s: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS_S))

    def observe(self, status: int, duration_s: float, size: int, size_in: int) -> None:
        self.requests += 1
        if status >= 500 or status == 0:
            self.errors += 1
        self.bytes_out += size
        self.bytes_in += size_in
        self.duration_sum_s += duration_s
        for index, bound in enumerate(BUCKETS_S):
            if duration_s <= bound:
                self.buckets[index] += 1
                break


class RouteMetrics:
    """Counters per route name, fed one access-log line at a time. Only the edge's current
    routes are counted (`keep_only`), so whatever writes to the socket, the counters are bounded
    by the routes."""

    def __init__(self) -> None:
        self.routes: dict[str, RouteCounters] = {}
        self.known: set[str] = set()

    def observe_line(self, line: bytes) -> None:
        try:
            entry = json.loads(line)
            logger = entry.get("logger", "")
            if not logger.startswith(_PREFIX):
                return
            headers = entry.get("request", {}).get("headers", {})
            length = headers.get("Content-Length", ["0"])[0]
            size_in = int(length) if str(length).isdigit() else 0
            name = logger[len(_PREFIX):]
            if name not in self.known:
                return
            counters = self.routes.setdefault(name, RouteCounters())
            counters.observe(int(entry.get("status", 0)), float(entry.get("duration", 0.0)),
                             int(entry.get("size", 0)), size_in)
        except (ValueError, TypeError, AttributeError):
            log.debug("edge: an access-log line that is not Caddy's JSON was skipped")

    def keep_only(self, names: set[str]) -> None:
        """Count these routes from now on; drop the counters of the others (removed routes),
        so /metrics stops listing them."""
        self.known = set(names)
        for name in set(self.routes) - self.known:
            del self.routes[name]


class AccessLogSink:
    """The unix socket Caddy's `net` log writer connects to. It must listen before the engine
    loads its config (Caddy 2.6 dials at load and refuses a config it cannot dial)."""

    def __init__(self, socket: Path, metrics: RouteMetrics) -> None:
        self.socket, self.metrics = socket, metrics
        self._server: asyncio.Server | None = None
        self._readers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        self._server = await asyncio.start_unix_server(self._read, path=str(self.socket),
                                                       limit=LINE_LIMIT)
        self.socket.chmod(0o600)

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._readers.add(task)
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.LimitOverrunError as exc:
                    await reader.readexactly(exc.consumed)  # skip the overlong part
                    continue
                except asyncio.IncompleteReadError:
                    return
                self.metrics.observe_line(line)
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            writer.close()
            if task is not None:
                self._readers.discard(task)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._readers):
                task.cancel()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()


_HEALTHY = re.compile(r'^caddy_reverse_proxy_upstreams_healthy\{upstream="([^"]+)"\} (\S+)$',
                      re.MULTILINE)


def upstreams_healthy(caddy_metrics: str) -> dict[str, bool]:
    """Caddy's own view of each backend (`host:port` -> healthy), from its /metrics text."""
    return {m.group(1): float(m.group(2)) >= 1 for m in _HEALTHY.finditer(caddy_metrics)}


class EdgeCollector(Collector):
    """Exports `RouteMetrics` (and the backends' health when given) on the node's /metrics:
    `registry.register(EdgeCollector(metrics, health))`."""

    def __init__(self, metrics: RouteMetrics,
                 health: dict[str, bool] | None = None) -> None:
        self.metrics = metrics
        self.health = health if health is not None else {}

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily
                                  | HistogramMetricFamily]:
        requests = CounterMetricFamily("formation_edge_route_requests",
                                       "Requests served by the edge, per route", labels=["route"])
        errors = CounterMetricFamily("formation_edge_route_errors",
                                     "Requests answered 5xx, per route", labels=["route"])
        sent = CounterMetricFamily("formation_edge_route_response_bytes",
                                   "Response body bytes, per route", labels=["route"])
        received = CounterMetricFamily("formation_edge_route_request_bytes",
                                       "Request body bytes, per route", labels=["route"])
        latency = HistogramMetricFamily("formation_edge_route_request_seconds",
                                        "Request duration through the edge, per route",
                                        labels=["route"])
        for name, c in sorted(self.metrics.routes.items()):
            requests.add_metric([name], c.requests)
            errors.add_metric([name], c.errors)
            sent.add_metric([name], c.bytes_out)
            received.add_metric([name], c.bytes_in)
            cumulative, buckets = 0, []
            for bound, count in zip(BUCKETS_S, c.buckets, strict=True):
                cumulative += count
                buckets.append((repr(bound), cumulative))
            buckets.append(("+Inf", c.requests))
            latency.add_metric([name], buckets, c.duration_sum_s)
        healthy = GaugeMetricFamily("formation_edge_backend_healthy",
                                    "1 while the engine's health checks pass for the backend",
                                    labels=["backend"])
        for backend, ok in sorted(self.health.items()):
            healthy.add_metric([backend], 1.0 if ok else 0.0)
        yield from (requests, errors, sent, received, latency, healthy)
