"""`formation network remove-node` against a real node service: a member admitted by the admin
is removed (it leaves the nodes view); a bad id, an unknown node and the node itself are refused
in one line each."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import yaml
from nacl.signing import SigningKey
from settings_factory import make_settings

from formation.api import state_routes
from formation.api.client import NodeClient
from formation.api.state_models import AppendRequest, CreateNetworkRequest
from formation.identity import node_id_for
from formation.node.service import NodeService
from tests.integration.conftest import formation


async def test_remove_node_from_the_command_line(short_tmp: Path) -> None:
    settings = make_settings(short_tmp)
    service = NodeService(settings)
    await service.start()
    try:
        config = short_tmp / "cli.yaml"
        config.write_text(yaml.safe_dump({"name": "cli", "data_dir": str(short_tmp / "cli"),
                                          "api": {"socket": str(settings.api.socket)}}))
        member = SigningKey.generate().verify_key.encode()
        async with NodeClient.unix(settings.api.socket) as client:
            await client.call(state_routes.state_create_network,
                              CreateNetworkRequest(name="lab", cidr="10.67.0.0/16"))
            await client.call(state_routes.state_append, AppendRequest(
                kind="node.admit", payload={"node": member.hex(), "roles": ["member"]}))

        async def cli(*args: str):
            return await asyncio.to_thread(formation, "--config", str(config), "network",
                                           "remove-node", *args)

        bad = await cli("not-an-id")
        assert bad.returncode == 1 and "expected a node id" in bad.stderr
        assert "Traceback" not in bad.stderr
        unknown = await cli(node_id_for(SigningKey.generate().verify_key.encode()))
        assert unknown.returncode == 1 and "No member node" in unknown.stderr, unknown.stderr
        itself = await cli(service.identity.node_id)
        assert itself.returncode == 1 and "cannot remove itself" in itself.stderr, itself.stderr
        done = await cli(node_id_for(member), "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["key"] == member.hex()
        async with NodeClient.unix(settings.api.socket) as client:
            nodes = (await client.call(state_routes.state_view, collection="nodes")).items
        assert [n["key"] for n in nodes] == [service.identity.public_key_hex]
        again = await cli(node_id_for(member))
        assert again.returncode == 1 and "No member node" in again.stderr
    finally:
        await service.stop()
