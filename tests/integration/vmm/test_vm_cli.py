"""`formation vm` as a user runs it against a real node: tables and JSON, and every refusal one
line on stderr with a non-zero exit, never a traceback. The instances stay stopped (no guest)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from vm_node import found, op_count, running_node, state_of, vm_settings
from waiting import until

from formation.api import vm_models as vm
from formation.api import vm_routes
from formation.api.client import NodeClient
from tests.integration.conftest import formation, write_config


async def _vm(config: Path, *args: str):
    return await asyncio.to_thread(formation, "--config", str(config), "vm", *args)


async def test_vm_commands_print_tables_json_and_one_line_errors(short_tmp: Path) -> None:
    settings = vm_settings(short_tmp)
    config = write_config(short_tmp)
    kernel = short_tmp / "vmlinuz"
    kernel.write_bytes(b"not a kernel" * 64)
    async with running_node(settings) as node, NodeClient.unix(settings.api.socket) as client:
        await found(client, node)
        await client.call(vm_routes.image_import, vm.ImageImport(name="img", kernel=str(kernel)))

        made = await _vm(config, "create", "--image", "img", "--name", "box", "--stopped",
                         "--json")
        assert made.returncode == 0, made.stderr
        box = json.loads(made.stdout)
        assert box["name"] == "box" and box["desired"] == "stopped"
        await until(lambda: _stopped(client), 30, what="box claimed and stopped")

        table = await _vm(config, "ls")
        assert table.returncode == 0, table.stderr
        header, row = table.stdout.splitlines()[:2]
        assert header.split()[:5] == ["NAME", "ID", "NODE", "STATE", "ADDRESS"]
        assert row.split()[:5] == ["box", box["id"][:12], "test-node", "stopped", "-"]

        shown = await _vm(config, "show", box["id"][:8])
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith(f"box ({box['id']})")
        assert "history" in shown.stdout and "stopped" in shown.stdout

        before = await op_count(client)
        for args, field in ((("create", "--image", "nope"), "image"),
                            (("create", "--image", "img", "--name", "box"), "name"),
                            (("create", "--image", "img", "--vcpus", "500"), "--vcpus"),
                            (("create", "--image", "img", "--memory", "100000"), "memory_mb"),
                            (("stop", "ghost"), "instance"),
                            (("resize", "box"), "resize"),
                            (("migrate", "box", "--to", "nowhere"), "node: no node named"),
                            (("migrate", "box", "--to", "test-node"), "already runs on")):
            done = await _vm(config, *args)
            assert done.returncode != 0, (args, done.stdout)
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
            assert field in lines[0], (args, lines[0])
        # node drain: the only node's instance has nowhere to go, said in one line
        drained = await asyncio.to_thread(formation, "--config", str(config), "node", "drain",
                                          "test-node")
        assert drained.returncode != 0 and "Traceback" not in drained.stderr
        assert drained.stderr.strip().splitlines() == [drained.stderr.strip()]
        assert "box: nowhere to go" in drained.stderr
        assert await op_count(client) == before

        helped = await asyncio.to_thread(formation, "vm", "--help")
        assert "formation vm create --image NAME" in helped.stdout
        for command in ("create", "ls", "show", "start", "stop", "restart", "resize", "rm",
                        "logs", "console", "migrate"):
            assert command in helped.stdout

        removed = await _vm(config, "rm", "box", "--json")
        assert removed.returncode == 0, removed.stderr
        assert json.loads((await _vm(config, "ls", "--json")).stdout)["instances"] == []


async def _stopped(client: NodeClient) -> bool:
    return await state_of(client, "box") == "stopped"
