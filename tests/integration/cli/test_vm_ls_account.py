"""`formation vm ls --account NAME` as a user runs it against a real node: only the instances
the account owns (one its own key made), '@nodes' for node-owned work, an account with none
says so; the owner shows in the table and the account in --json. No guest boots (the
instances name an image no node has)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from settings_factory import make_settings

from formation.api.client import NodeClient
from formation.node.service import NodeService
from tests.integration.conftest import formation, write_config
from tests.tui.accounts_support import ALICE, found, node_create, seed_accounts, tenant_create


async def _ls(config: Path, *args: str):
    return await asyncio.to_thread(formation, "--config", str(config), "vm", "ls", *args)


async def test_vm_ls_filters_by_account(short_tmp: Path) -> None:
    settings = make_settings(short_tmp)
    config = write_config(short_tmp)
    service = NodeService(settings)
    await service.start()
    try:
        async with NodeClient.unix(settings.api.socket, timeout_s=9.5) as client:
            await found(client)
            await seed_accounts(client)
            await tenant_create(client, ALICE, "alice", "web")
            await node_create(client, "batch")

        mine = await _ls(config, "--account", "alice")
        assert mine.returncode == 0, mine.stderr
        header, *rows = mine.stdout.splitlines()
        assert "OWNER" in header.split()
        assert [r.split()[0] for r in rows] == ["web"]
        assert "alice" in rows[0].split()

        nodes = await _ls(config, "--account", "@nodes", "--json")
        assert nodes.returncode == 0, nodes.stderr
        listed = json.loads(nodes.stdout)["instances"]
        assert [(i["name"], i["account"]) for i in listed] == [("batch", None)]

        everyone = await _ls(config, "--json")
        assert sorted((i["name"], i["account"]) for i in json.loads(everyone.stdout)
                      ["instances"]) == [("batch", None), ("web", "alice")]

        none = await _ls(config, "--account", "bob")
        assert none.returncode == 0 and none.stdout.strip() == "no instances of account bob"
    finally:
        await service.stop()
