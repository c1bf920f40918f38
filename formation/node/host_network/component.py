"""The host-network part of the node: lists the host's interfaces for the console, and at start
makes the networkd file match the `underlay` setting (the console's saves apply it at once
through `networkd.apply`; this catches a setting edited in the file by hand)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from formation.api import host_models as hm
from formation.api import models as m
from formation.api.caller import Caller
from formation.api.models import HealthCheck
from formation.node.host_network import networkd
from formation.node.host_network.interfaces import list_interfaces
from formation.node.net.host import LOCAL_HOST, NetHost

if TYPE_CHECKING:
    from formation.node.service import NodeService

log = logging.getLogger(__name__)


class HostNetwork:
    name = "host-network"

    def __init__(self, host: NetHost = LOCAL_HOST) -> None:
        self.host = host
        self.service: NodeService | None = None
        self.underlay = "not configured (the image's DHCP on every wired interface)"

    async def start(self, service: NodeService) -> None:
        self.service = service
        if service.settings.underlay.interface is not None:
            service.spawn(self._apply_at_start())

    async def _apply_at_start(self) -> None:
        assert self.service is not None
        try:
            applied = await networkd.apply(self.service.settings.underlay)
        except OSError as exc:
            self.underlay = f"cannot write the networkd file: {exc}"
            log.error("underlay not applied", extra={"fields": {"error": str(exc)}})
            return
        self.underlay = applied.detail
        if applied.changed:
            log.info("underlay applied", extra={"fields": {"detail": applied.detail}})

    async def stop(self) -> None:
        return None

    def api_handlers(self) -> object:
        return HostNetworkHandlers(self)

    def health(self) -> list[HealthCheck]:
        return [HealthCheck(name="underlay", ok=not self.underlay.startswith("cannot"),
                            detail=self.underlay)]


class HostNetworkHandlers:
    def __init__(self, part: HostNetwork) -> None:
        self.part = part

    async def host_interfaces(self, body: m.Empty, caller: Caller) -> hm.HostInterfaces:
        service = self.part.service
        assert service is not None
        found = await asyncio.to_thread(list_interfaces, self.part.host,
                                        service.settings.mesh.interface)
        return hm.HostInterfaces(interfaces=found, networkd=await networkd.networkd_running())
