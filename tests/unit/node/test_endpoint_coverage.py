"""A node with its default parts serves every endpoint in the API definition; one built without
some part answers that part's endpoints with 503, not a crash."""

from formation.api import routes
from formation.api.client import ApiError, NodeClient
from formation.api.state_routes import state_status
from formation.node.service import NodeService


async def test_default_components_serve_every_endpoint(node: NodeService) -> None:
    assert node.unserved_endpoints == []


async def test_a_part_left_out_answers_503(node_settings) -> None:
    service = NodeService(node_settings, components=[])
    await service.start()
    try:
        assert "state_status" in service.unserved_endpoints
        async with NodeClient.unix(node_settings.api.socket) as client:
            try:
                await client.call(state_status)
            except ApiError as exc:
                assert exc.status == 503
                assert "not running" in exc.body.message
            else:
                raise AssertionError("state_status answered without a state store")
            assert (await client.call(routes.node_status)).name == node_settings.name
    finally:
        await service.stop()
