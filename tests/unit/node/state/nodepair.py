"""Two real node services for replication tests: each with its own data dir, unix socket and
loopback TCP port, anti-entropy slowed to never (the tests drive it) and no address claims."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from settings_factory import make_settings

from formation.node.service import NodeService


@asynccontextmanager
async def two_nodes(base: Path) -> AsyncIterator[list[NodeService]]:
    services = []
    try:
        for name in ("a", "b"):
            settings = make_settings(base / name, name=f"node-{name}",
                                     state={"anti_entropy_interval_s": 3600,
                                            "claim_address": False})
            service = NodeService(settings)
            await service.start()
            services.append(service)
        yield services
    finally:
        for service in services:
            await service.stop()
