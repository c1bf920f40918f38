"""/metrics is valid Prometheus text and counts requests by endpoint and status."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from formation.api import routes
from formation.api.client import NodeClient


def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_metrics_parse_and_count_requests(client: NodeClient) -> None:
    for _ in range(3):
        await client.call(routes.health)
    before = samples((await client.raw_get(routes.METRICS_PATH)).decode())
    key = ("formation_api_requests_total", (("endpoint", "health"), ("status", "200")))
    assert before[key] == 3.0
    await client.call(routes.health)
    after = samples((await client.raw_get(routes.METRICS_PATH)).decode())
    assert after[key] == 4.0
    assert after[("formation_api_request_seconds_count", (("endpoint", "health"),))] == 4.0
    assert after[("formation_node_uptime_seconds", ())] >= 0
    metrics_key = ("formation_api_requests_total", (("endpoint", "metrics"), ("status", "200")))
    assert after[metrics_key] == 1.0


async def test_published_events_are_counted_by_topic(node, client: NodeClient) -> None:
    node.publish("test", "x", {})
    node.publish("test", "y", {})
    found = samples((await client.raw_get(routes.METRICS_PATH)).decode())
    assert found[("formation_events_published_total", (("topic", "test"),))] == 2.0
