"""form-dns as a part of the node: when `dns.enabled`, serve the zone on `dns.listen`, else on
the mesh address (`mesh.address`, or the one this node claims in the state store, once it has
one), port `dns.port`. Names come from the state store's node and instance views when the node
keeps a state store, else from a static table (`component.records`).

With a state store and `dns.vm_gateway`, the node also answers on its VM bridge gateway: the
first host of the VM subnet its mesh slot gives it (net/addressing.py), which the VM network
hands its guests as their resolver. The bridge is made by the VM network part, maybe later, maybe
again after a restart; the sockets are bound with IP_FREEBIND so they answer from the moment the
address is on the bridge, and they move when this node's slot (its mesh address) changes."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
from typing import TYPE_CHECKING

from formation.api import models as m
from formation.errors import FormationError
from formation.node.dns.records import StaticRecords
from formation.node.dns.state_records import StateRecords
from formation.node.dns.vm_gateway import vm_gateway
from formation.node.net.host import LOCAL_HOST, NetHost

if TYPE_CHECKING:
    from formation.node.dns.server import DnsResolver, DnsServer
    from formation.node.service import NodeService
    from formation.node.state.component import StateComponent
    from formation.node.state.store import StateStore

log = logging.getLogger(__name__)

WAIT_ADDRESS_S = 0.5
GATEWAY_RETRY_MAX_S = 30.0  # binding the gateway failed (port taken): retry, slowing down


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
        self.gateway_server: DnsServer | None = None  # on the VM bridge gateway
        self.gateway: str | None = None  # the address gateway_server is bound to

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
                                    s.zone, s.upstreams, s.ttl_s, s.instance_ttl_s)
        # a wildcard in dns.listen already answers on the gateway (and would hold its port)
        wildcard = any(ipaddress.ip_address(a).is_unspecified for a in s.listen)
        if store is not None and s.vm_gateway and not wildcard:
            service.spawn(self._serve_on_vm_gateway(service, store))
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

    async def _serve(self, listen: list[str], port: int, freebind: bool = False) -> DnsServer:
        from formation.node.dns.server import DnsServer

        assert self.resolver is not None
        server = DnsServer(self.resolver, self.host)
        await server.start(listen, port, freebind)
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

    async def _serve_on_vm_gateway(self, service: NodeService, store: StateStore) -> None:
        """Follow this node's VM gateway (from its mesh address in the nodes view and the
        network's CIDR) and keep a server bound to it."""
        assert service.identity is not None
        me, port = service.identity.public_key_hex, service.settings.dns.port
        changed = asyncio.Event()
        unsubscribe = store.subscribe(lambda ops, origin: changed.set())
        failures = 0
        try:
            while True:
                changed.clear()
                gateway = await self._vm_gateway(service, store, me)
                if gateway != self.gateway and self.gateway_server is not None:
                    await self.gateway_server.stop()
                    self.gateway_server, self.gateway = None, None
                if gateway is not None and self.gateway_server is None \
                        and gateway not in service.settings.dns.listen:
                    try:
                        server = await self._serve([gateway], port, freebind=True)
                    except OSError as exc:  # the port taken by another resolver: say it once
                        if failures == 0:
                            log.warning("dns cannot listen on the VM gateway", extra={
                                "fields": {"address": gateway, "port": port,
                                           "error": exc.strerror}})
                        failures += 1
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(min(GATEWAY_RETRY_MAX_S, failures)):
                                await changed.wait()
                        continue
                    failures = 0
                    self.gateway_server, self.gateway = server, gateway
                    log.info("dns serving on the VM gateway", extra={"fields": {
                        "address": gateway, "port": port}})
                await changed.wait()
        finally:
            unsubscribe()

    async def _vm_gateway(self, service: NodeService, store: StateStore, me: str) -> str | None:
        network = await store.view("network")
        cidr = network[0].get("cidr") if network else None
        mine = next((n for n in await store.view("nodes") if n["key"] == me), None)
        address = mine.get("address") if mine else None
        if not (isinstance(cidr, str) and isinstance(address, str)):
            return None
        return vm_gateway(cidr, service.settings.mesh.vm_prefix, address)

    async def stop(self) -> None:
        if self.resolver is not None and isinstance(self.resolver.source, StateRecords):
            self.resolver.source.close()  # stop following the store
        for server in (self.server, self.gateway_server):
            if server is not None:
                await server.stop()
        self.server = self.gateway_server = None
        self.gateway = None

    def api_handlers(self) -> None:
        return None

    def health(self) -> list[m.HealthCheck]:
        if not self.enabled:
            return []
        if self.waiting:
            return [m.HealthCheck(name="dns", ok=True, detail="waiting for a mesh address")]
        servers = [srv for srv in (self.server, self.gateway_server) if srv is not None]
        bound = ", ".join(f"{a}:{p}" for srv in servers for a, p in srv.bound)
        return [m.HealthCheck(name="dns", ok=self.server is not None,
                              detail=f"serving on {bound}" if bound else "not serving")]
