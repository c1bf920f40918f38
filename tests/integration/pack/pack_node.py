"""A real node service (state store, image store, API on a unix socket and loopback TCP) in a
founded one-node network, whose pack part is given a builder (a FAKE one in the plumbing tests,
fake_builder.py; the real engine in the end-to-end test)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml
from settings_factory import make_settings
from waiting import until

from formation.api import pack_models as pm
from formation.api import pack_routes, vm_routes
from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api.client import NodeClient
from formation.api.models import Event
from formation.node.pack.builder import Toolchain
from formation.node.pack.component import PackComponent
from formation.node.parts import build_parts
from formation.node.service import NodeService

REPO = Path(__file__).resolve().parents[3]
RESOURCES = {"cpus": 2, "memory_mb": 2048, "disk_gb": 40}


def write_context(base: Path, formfile: str, files: dict[str, str] | None = None) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    (base / "Formfile").write_text(formfile)
    for name, text in (files or {}).items():
        (base / name).write_text(text)
    return base


@contextlib.asynccontextmanager
async def pack_node(base: Path, toolchain: Toolchain | None,
                    **overrides: Any) -> AsyncIterator[NodeService]:
    """`toolchain`: the pack part's builder; None: the real one."""
    settings = make_settings(base, resources=RESOURCES,
                             underlay={"networkd_dir": str(base / "networkd")},
                             vmm={"backend": "qemu", "stop_grace_s": 2.0}, **overrides)
    parts = build_parts(settings)
    parts.pack = PackComponent(parts.state, parts.images, toolchain)
    service = NodeService(settings, parts=parts)
    await service.start()
    try:
        async with NodeClient.unix(settings.api.socket, timeout_s=30) as client:
            await client.call(sr.state_create_network, sm.CreateNetworkRequest(name="packlab"))
            me = service.identity.public_key_hex if service.identity else ""

            async def recorded() -> bool:
                view = await client.call(sr.state_view, collection="nodes")
                return any(n["key"] == me and n.get("resources") for n in view.items)

            await until(recorded, 30, what="this node's record with its resources")
        yield service
    finally:
        await service.stop()


async def wait_build(client: NodeClient, build_id: str, timeout_s: float = 60
                     ) -> pm.PackBuild:
    found: list[pm.PackBuild] = []

    async def finished() -> bool:
        build = await client.call(pack_routes.pack_build_show, build=build_id)
        found[:] = [build]
        return build.state in ("done", "failed", "cancelled")

    await until(finished, timeout_s, what=f"build {build_id} finished")
    return found[0]


def pack_events(service: NodeService, build_id: str) -> list[Event]:
    return [e for e in service.bus._history if e.topic == "pack"
            and e.data.get("build") == build_id]


async def image_add_payloads(client: NodeClient) -> list[dict[str, Any]]:
    view = await client.call(sr.state_view, collection="images")
    payloads = []
    for element in view.items:
        op = await client.call(sr.state_op, op_id=element["id"])
        payloads.append({**op.payload, "author": op.author})
    return payloads


def kinds(events: list[Event]) -> list[str]:
    return [e.kind for e in events]



async def remove_instances(node: NodeService) -> None:
    """Deletes every instance and waits until the node ended them: a VMM outlives its node
    service by design, so a test must not stop the node with guests running."""
    async with NodeClient.unix(node.settings.api.socket, timeout_s=30) as client:
        for instance in (await client.call(vm_routes.vm_list)).instances:
            await client.call(vm_routes.vm_delete, instance=instance.id)
    run_dir = node.settings.data_dir / "vms"
    await until(lambda: not run_dir.exists() or not any(run_dir.iterdir()), 90,
                what="every VM ended")


async def pack_cli(service: NodeService, *args: str) -> tuple[int, str, str]:
    """`formation --config CFG pack ARGS...` in a process, talking to the node's socket."""
    config = service.settings.data_dir.parent / "cli.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(service.settings.data_dir),
                                      "api": {"socket": str(service.settings.api.socket)}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORMATION_")}
    env["PYTHONPATH"] = str(REPO)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.pack.pack_cli", "--config", str(config),
        "pack", *args, cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
