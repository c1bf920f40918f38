"""form-dns as a part of the node: when `dns.enabled`, serve the zone on `dns.listen`, else on
the mesh address (`mesh.address`, or the one this node claims in the state store, once it has
one), port `dns.port`. Names come from the state store's node and instance views when the node
keeps a state store, else from a static table (`component.records`)."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
from typing import TYPE_CHECKING

from formation.api import models as m
from formation.errors import FormationError
from formation.node.dns.records import StaticRecords
from formation.node.dns.state_records import StateRecords
from formation.node.net.host import LOCAL_HOST, NetHost

if TYPE_CHECKING:
    from formation.node.dns.server import DnsResolver, DnsServer
    from formation.node.service import NodeService
    from formation.node.state.component import StateComponent
    from formation.node.state.store import StateStore

log = logging.getLogger(__name__)

WAIT_ADDRESS_S = 0.5


class DnsComponent:
    name = "dns"
    after_ready = True  # it serves on the mesh address, which comes up after ready

    def __init__(self, host: NetHost = LOCAL_HOST, state: StateComponent | None = None) -> None:
        """`state`: the state store's part, started before this one; without it names come
        from `records`."""
        self.host = host
        self.state = state
        self.records = StaticRecords()
        self.resolver: DnsResolver | None = None
        self.server: DnsServer | None = None
        self.enabled = False
        self.waiting = False  # for the mesh address this node claims in the state

    async def start(self, service: NodeService) -> None:
        s = service.settings.dns
        self.enabled = s.enabled
        if not s.enabled:
            return
        # dnspython is imported only when DNS is on: seconds under emulation, for nothing else.
        from formation.node.dns.server import DnsResolver

        # names come from the replicated state when the node keeps one
        store: StateStore | None = self.state.require_store() if self.state else None
        self.resolver = DnsResolver(StateRecords(store) if store else self.records,
                                    s.zone, s.upstreams, s.ttl_s)
        listen = list(s.listen)
        if not listen and service.settings.mesh.address:
            listen = [str(ipaddress.ip_interface(service.settings.mesh.address).ip)]
        if not listen and store is not None and service.settings.mesh.enabled:
            self.waiting = True
            service.spawn(self._serve_on_claimed_address(service, store))
            return
        if not listen:
            raise FormationError("dns: nothing to listen on: set dns.listen, or mesh.address")
        try:
            self.server = await self._serve(listen, s.port)
        except OSError as exc:
            raise FormationError(
                f"dns: cannot listen on {', '.join(listen)} port {s.port}: {exc.strerror}"
            ) from None

    async def _serve(self, listen: list[str], port: int) -> DnsServer:
        from formation.node.dns.server import DnsServer

        assert self.resolver is not None
        server = DnsServer(self.resolver, self.host)
        await server.start(listen, port)
        return server

    async def _serve_on_claimed_address(self, service: NodeService, store: StateStore) -> None:
        """Without a configured address: serve on the mesh address this node claims in the
        state, once the mesh has put it on the interface (binding fails until then), and move
        with it when a concurrent claim took it and the node claimed another."""
        assert service.identity is not None
        me, port = service.identity.public_key_hex, service.settings.dns.port
        served: str | None = None
        changed = asyncio.Event()  # a new op may have moved this node's address
        store.subscribe(lambda ops, origin: changed.set())
        while True:
            changed.clear()
            mine = next((n for n in await store.view("nodes") if n["key"] == me), None)
            address = mine.get("address") if mine else None
            if self.server is not None and address != served:
                log.info("dns leaves a mesh address this node no longer holds",
                         extra={"fields": {"address": served}})
                await self.server.stop()
                self.server, served, self.waiting = None, None, True
            if address and self.server is None:
                try:
                    self.server = await self._serve([address], port)
                    served, self.waiting = address, False
                    log.info("dns serving on the mesh address", extra={"fields": {
                        "address": address, "port": port}})
                except OSError as exc:
                    if exc.errno != errno.EADDRNOTAVAIL:
                        log.warning("dns cannot listen", extra={"fields": {
                            "address": address, "port": port, "error": exc.strerror}})
            if self.server is None:
                await asyncio.sleep(WAIT_ADDRESS_S)  # the mesh puts the address on soon
            else:
                await changed.wait()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    def api_handlers(self) -> None:
        return None

    def health(self) -> list[m.HealthCheck]:
        if not self.enabled:
            return []
        if self.waiting:
            return [m.HealthCheck(name="dns", ok=True, detail="waiting for a mesh address")]
        bound = ", ".join(f"{a}:{p}" for a, p in self.server.bound) if self.server else ""
        return [m.HealthCheck(name="dns", ok=self.server is not None,
                              detail=f"serving on {bound}" if bound else "not serving")]
