"""GET /v1/health: public on TCP for load balancers, so an unsigned caller learns the status and
each part's ok flag but not the data directory, the network id or other details that identify
the node; the local socket (the console's dashboard) keeps every detail. Real TCP and unix
sockets on a real node service."""

from __future__ import annotations

import json

import aiohttp

from formation.api import routes
from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api.client import NodeClient
from formation.node.health import PUBLIC_DETAILS
from formation.node.service import NodeService


async def unsigned_get(node: NodeService, path: str) -> tuple[int, str]:
    address = node.listen_addresses()[1].removeprefix("tcp:")
    async with aiohttp.ClientSession() as session, session.get(f"http://{address}{path}") as r:
        return r.status, await r.text()


async def test_unsigned_tcp_health_says_what_a_load_balancer_needs_and_no_more(
        node: NodeService, client: NodeClient) -> None:
    genesis = await client.call(sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    network_id = (await client.call(sr.state_heads)).network
    assert network_id and genesis.author == node.identity.public_key_hex
    secrets_of_place = [str(node.settings.data_dir), network_id, node.identity.public_key_hex,
                        node.identity.node_id]

    local = await client.call(routes.health)
    local_text = local.model_dump_json()
    # the local socket keeps the details (so the strings below are really there to leak)
    assert str(node.settings.data_dir) in local_text and network_id in local_text

    status, text = await unsigned_get(node, routes.health.path)
    assert status == 200
    for secret in secrets_of_place:
        assert secret not in text, secret
    public = json.loads(text)
    assert public["status"] == local.status
    assert [(c["name"], c["ok"]) for c in public["checks"]] == [
        (c.name, c.ok) for c in local.checks]
    assert {c["detail"] for c in public["checks"]} <= PUBLIC_DETAILS | {""}
    assert {"name": "api", "ok": True, "detail": "serving"} in public["checks"]
