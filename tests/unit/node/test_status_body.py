"""The pre-rendered status response is exactly what the model would serialize, and it follows
every change of its inputs."""

from __future__ import annotations

import asyncio
import json

from formation.api import models as m
from formation.api import routes
from formation.api.client import NodeClient
from formation.node.handlers import NodeHandlers
from formation.node.service import NodeService


async def test_rendered_status_equals_the_model_serialization(node: NodeService) -> None:
    handlers = NodeHandlers(node)
    response = await handlers.node_status(None, m.Empty())  # type: ignore[arg-type]
    served = json.loads(response.body)
    expected = json.loads(handlers._status(served["uptime_s"]).model_dump_json())
    assert served == expected
    m.NodeStatus.model_validate(served)


async def test_uptime_changes_per_request(client: NodeClient) -> None:
    first = await client.call(routes.node_status)
    await asyncio.sleep(0.02)
    second = await client.call(routes.node_status)
    assert second.uptime_s > first.uptime_s
    assert second.identity == first.identity


async def test_status_follows_a_new_probe(node: NodeService, client: NodeClient) -> None:
    before = await client.call(routes.node_status)
    probed = await client.call(routes.probe_capabilities, m.ProbeRequest(only=["disk"]))
    after = await client.call(routes.node_status)
    assert after.capabilities == probed
    assert after.capabilities.probed_at != before.capabilities.probed_at


async def test_status_follows_new_resources(node: NodeService) -> None:
    handlers = NodeHandlers(node)
    handlers.resources.max_age_s = 0.0  # sample on every request
    first = json.loads((await handlers.node_status(None, m.Empty())).body)  # type: ignore
    handlers.resources._sample = handlers.resources._sample.model_copy(update={"cpus": 999})
    handlers.resources.max_age_s = 3600.0
    second = json.loads((await handlers.node_status(None, m.Empty())).body)  # type: ignore
    assert first["resources"]["cpus"] != 999 and second["resources"]["cpus"] == 999
