"""API round trips through the real client over a real unix socket."""

from formation.api import routes
from formation.api.client import NodeClient
from formation.node.service import NodeService


async def test_node_status_over_unix_socket(node: NodeService, client: NodeClient) -> None:
    status = await client.call(routes.node_status)
    assert status.identity.node_id == node.identity.node_id
    assert status.name == "test-node"
    assert status.listen[0] == f"unix:{node.settings.api.socket}"
    assert status.resources.cpus >= 1


async def test_health_is_ok(client: NodeClient) -> None:
    health = await client.call(routes.health)
    assert health.status == "ok"
    assert {check.name for check in health.checks} >= {"api", "data_dir"}
