"""Per-route metrics of tcp routes on the node's /metrics, from HAProxy's `show stat`: each
route's frontend counts its client connections and bytes. HAProxy's counters start again at
zero in each new worker (every reload or restart: the engine says so, `new_worker`);
`TcpRouteCounters` adds what the previous workers had counted, so what the node exports only
grows (what a worker counted between the last read and its reload is lost: at most one refresh
period's worth)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from formation.node.edge.haproxy_config import FRONTEND_PREFIX
from formation.node.edge.haproxy_stats import StatRow


@dataclass
class _Monotonic:
    """A counter that survives its source starting again at zero."""

    base: int = 0
    last: int = 0

    def see(self, value: int) -> int:
        if value < self.last:
            self.base += self.last
        self.last = value
        return self.base + value


@dataclass
class TcpRouteCounters:
    connections: dict[str, _Monotonic] = field(default_factory=dict)
    bytes_in: dict[str, _Monotonic] = field(default_factory=dict)
    bytes_out: dict[str, _Monotonic] = field(default_factory=dict)
    active: dict[str, int] = field(default_factory=dict)

    def new_worker(self) -> None:
        """A reload or restart: the next worker counts from zero, so what the last one counted
        becomes the base."""
        for table in (self.connections, self.bytes_in, self.bytes_out):
            for counter in table.values():
                counter.base += counter.last
                counter.last = 0

    def observe(self, rows: list[StatRow], routes: set[str]) -> None:
        """Takes one `show stat` of the current worker; only `routes` (the served tcp routes'
        names) are kept, so removed routes leave /metrics."""
        for table in (self.connections, self.bytes_in, self.bytes_out, self.active):
            for name in set(table) - routes:
                del table[name]
        for row in rows:
            name = row.proxy[len(FRONTEND_PREFIX):]
            if row.server != "FRONTEND" or not row.proxy.startswith(FRONTEND_PREFIX) \
                    or name not in routes:
                continue
            self.connections.setdefault(name, _Monotonic()).see(row.sessions_total)
            self.bytes_in.setdefault(name, _Monotonic()).see(row.bytes_in)
            self.bytes_out.setdefault(name, _Monotonic()).see(row.bytes_out)
            self.active[name] = row.sessions_now

    def value(self, table: dict[str, _Monotonic], name: str) -> int:
        counter = table[name]
        return counter.base + counter.last


class TcpRouteCollector(Collector):
    """`registry.register(TcpRouteCollector(counters))` while HAProxy runs."""

    def __init__(self, counters: TcpRouteCounters) -> None:
        self.counters = counters

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        c = self.counters
        connections = CounterMetricFamily(
            "formation_edge_route_connections",
            "Client connections accepted by the edge, per tcp route", labels=["route"])
        active = GaugeMetricFamily("formation_edge_route_active_connections",
                                   "Client connections open now, per tcp route",
                                   labels=["route"])
        received = CounterMetricFamily(
            "formation_edge_route_tcp_received_bytes",
            "Bytes received from clients, per tcp route", labels=["route"])
        sent = CounterMetricFamily("formation_edge_route_tcp_sent_bytes",
                                   "Bytes sent to clients, per tcp route", labels=["route"])
        for name in sorted(c.connections):
            connections.add_metric([name], c.value(c.connections, name))
            received.add_metric([name], c.value(c.bytes_in, name))
            sent.add_metric([name], c.value(c.bytes_out, name))
            active.add_metric([name], c.active.get(name, 0))
        yield from (connections, active, received, sent)
