"""form-dns as a part of the node: when `dns.enabled`, serve the zone on `dns.listen` (or the
mesh address) and port `dns.port`. Names come from the state store's node and instance views
when the node keeps a state store, else from a static table (`component.records`)."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from formation.api import models as m
from formation.errors import FormationError
from formation.node.dns.records import RecordSource, StaticRecords
from formation.node.dns.server import DnsResolver, DnsServer
from formation.node.dns.state_records import StateRecords
from formation.node.net.host import LOCAL_HOST, NetHost
from formation.node.state.component import store_of

if TYPE_CHECKING:
    from formation.node.service import NodeService


class DnsComponent:
    name = "dns"

    def __init__(self, host: NetHost = LOCAL_HOST) -> None:
        self.host = host
        self.records = StaticRecords()
        self.resolver: DnsResolver | None = None
        self.server: DnsServer | None = None
        self.enabled = False

    async def start(self, service: NodeService) -> None:
        s = service.settings.dns
        self.enabled = s.enabled
        if not s.enabled:
            return
        listen = list(s.listen)
        if not listen and service.settings.mesh.address:
            listen = [str(ipaddress.ip_interface(service.settings.mesh.address).ip)]
        if not listen:
            raise FormationError("dns: nothing to listen on: set dns.listen, or mesh.address")
        try:  # names come from the replicated state when the node keeps one
            source: RecordSource = StateRecords(store_of(service))
        except RuntimeError:
            source = self.records
        self.resolver = DnsResolver(source, s.zone, s.upstreams, s.ttl_s)
        server = DnsServer(self.resolver, self.host)
        try:
            await server.start(listen, s.port)
        except OSError as exc:
            raise FormationError(
                f"dns: cannot listen on {', '.join(listen)} port {s.port}: {exc.strerror}"
            ) from None
        self.server = server

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    def api_handlers(self) -> None:
        return None

    def health(self) -> list[m.HealthCheck]:
        if not self.enabled:
            return []
        bound = ", ".join(f"{a}:{p}" for a, p in self.server.bound) if self.server else ""
        return [m.HealthCheck(name="dns", ok=self.server is not None,
                              detail=f"serving on {bound}" if bound else "not serving")]
