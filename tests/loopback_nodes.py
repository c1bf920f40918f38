"""Real node services on loopback for multi-node tests that need no namespaces: each with its own
data dir, unix socket and TCP port; every node after the first finds n0 through its bootstrap
list, and the rest is peer exchange."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from settings_factory import make_settings

from formation.identity import load_or_create_identity
from formation.node.service import NodeService
from tests.ports import free_port


@asynccontextmanager
async def loopback_nodes(base: Path, count: int, membership: dict[str, Any],
                         trust_each_other: bool) -> AsyncIterator[list[NodeService]]:
    """n0..n{count-1}, started; stopped afterwards unless a test already stopped one.
    `trust_each_other`: every node trusts the others' keys in advance (no joining needed)."""
    ports = [free_port() for _ in range(count)]
    keys = [load_or_create_identity(base / f"n{i}" / "data").public_key_hex
            for i in range(count)] if trust_each_other else []
    services = []
    for i in range(count):
        settings = make_settings(
            base / f"n{i}", name=f"n{i}",
            api={"socket": str(base / f"n{i}.sock"), "listen": f"127.0.0.1:{ports[i]}"},
            trusted_keys=[k for j, k in enumerate(keys) if j != i],
            bootstrap=[] if i == 0 else [f"127.0.0.1:{ports[0]}"],
            discovery={"bootstrap_delay_s": 0}, membership=membership,
        )
        services.append(NodeService(settings))
    for service in services:
        await service.start()
    try:
        yield services
    finally:
        for service in services:
            if service._runner is not None:
                await service.stop()
