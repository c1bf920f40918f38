"""A real node service for the VM tests: QEMU backend, a founded one-node network whose record
offers a known size, and helpers to read what the API and the host say about an instance."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from settings_factory import make_settings
from waiting import until

from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api import vm_models as vm
from formation.api import vm_routes
from formation.api.client import NodeClient
from formation.config.settings import NodeSettings
from formation.node.service import NodeService

RESOURCES = {"cpus": 2, "memory_mb": 2048, "disk_gb": 40}


def vm_settings(base: Path, **overrides: Any) -> NodeSettings:
    vmm = {"backend": "qemu", "stop_grace_s": 5, "boot_timeout_s": 90,
           **overrides.pop("vmm", {})}
    return make_settings(base, vmm=vmm, resources=overrides.pop("resources", RESOURCES),
                         **overrides)


@asynccontextmanager
async def running_node(settings: NodeSettings) -> AsyncIterator[NodeService]:
    service = NodeService(settings)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


async def found(client: NodeClient, node: NodeService) -> None:
    """A one-node network whose record (written by the join part) offers RESOURCES."""
    await client.call(sr.state_create_network, sm.CreateNetworkRequest(name="vms"))
    me = node.identity.public_key_hex if node.identity else ""

    async def recorded() -> bool:
        view = await client.call(sr.state_view, collection="nodes")
        return any(n["key"] == me and n.get("resources") for n in view.items)

    await until(recorded, 30, what="this node's record with its resources")


async def op_count(client: NodeClient) -> int:
    return (await client.call(sr.state_status)).ops


async def show(client: NodeClient, ref: str) -> vm.InstanceDetail:
    return await client.call(vm_routes.vm_show, instance=ref)


async def state_of(client: NodeClient, ref: str) -> str:
    return (await show(client, ref)).instance.state


async def serial_text(client: NodeClient, ref: str) -> str:
    chunks = [c.text async for c in client.stream(
        vm_routes.vm_serial, query=vm.SerialQuery(tail_bytes=1 << 20), instance=ref)]
    return "".join(chunks)


def vmm_processes(inst_id: str) -> list[int]:
    """Pids of VMM processes whose command line names this instance's workdir."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if inst_id.encode() in cmdline and b"qemu" in cmdline.split(b"\0")[0]:
            found.append(int(entry))
    return found
