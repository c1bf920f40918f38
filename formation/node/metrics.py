"""Prometheus metrics, one registry per node service so that several can live in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "formation_api_requests", "API requests by endpoint and status",
            ["endpoint", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "formation_api_request_seconds", "API request latency by endpoint", ["endpoint"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5),
        )
        self.auth_failures = Counter(
            "formation_api_auth_failures", "Requests refused with 401, by reason",
            ["reason"], registry=self.registry,
        )
        self.events = Counter(
            "formation_events_published", "Events published by topic", ["topic"],
            registry=self.registry,
        )
        self.uptime = Gauge(
            "formation_node_uptime_seconds", "Seconds since the node service started",
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        """Counts one request. The labelled children are looked up once per (endpoint, status):
        both sets are small and fixed, and the lookup is a lock and a tuple key every time."""
        key = (endpoint, status)
        children = self._request_children.get(key)
        if children is None:
            children = (self.requests.labels(endpoint, str(status)), self.latency.labels(endpoint))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)
