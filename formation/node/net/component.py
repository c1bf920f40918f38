"""The mesh as a part of the node: when `mesh.enabled`, create the WireGuard interface with the
node's own key (backend chosen by the capability probe unless the settings force one), put the
mesh address on it, publish status events, and serve GET /v1/mesh. With a state store the
peers and the mesh address follow its views (follow.py); the reconciler applies them.

Every second it also reads the interface into `routes` (which peers the mesh reaches now, and
their handshake ages: other parts send node-to-node API traffic over the mesh through it, and
membership shows the ages), and serves the node API on the mesh address. It follows the host's
underlay addresses (underlay_watch.py, shared with discovery): when they change, the follower
rewrites this node's `wg_endpoints` and the peers are re-set."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiohttp import web

from formation.addresses import every_address
from formation.api import models as m
from formation.api.caller import Caller
from formation.api.errors import Unavailable
from formation.api.mesh_models import MeshPeer, MeshStatus
from formation.errors import FormationError
from formation.node.capabilities import host as probes
from formation.node.net.backend import WireGuardBackend
from formation.node.net.backend_factory import make_backend
from formation.node.net.follow import StateFollower
from formation.node.net.host import LOCAL_HOST, NetHost
from formation.node.net.peers import InterfaceStatus, WireGuardError
from formation.node.net.reconcile import MeshReconciler
from formation.node.net.routes import MeshRoutes
from formation.node.net.underlay_watch import UnderlayWatch

if TYPE_CHECKING:
    from formation.node.service import NodeService
    from formation.node.state.component import StateComponent

log = logging.getLogger(__name__)

WATCH_EVERY_S = 1.0


def status_model(status: InterfaceStatus, node_ids: dict[str, str], now: float) -> list[MeshPeer]:
    peers = []
    for p in status.peers:
        seen = p.latest_handshake or None
        peers.append(MeshPeer(
            public_key=p.public_key, node_id=node_ids.get(p.public_key), endpoint=p.endpoint,
            allowed_ips=list(p.allowed_ips),
            latest_handshake=datetime.fromtimestamp(seen, UTC) if seen else None,
            handshake_age_s=round(max(0.0, now - seen), 1) if seen else None,
            rx_bytes=p.rx_bytes, tx_bytes=p.tx_bytes,
            persistent_keepalive_s=p.persistent_keepalive,
        ))
    return peers


class MeshComponent:
    name = "mesh"
    after_ready = True  # seconds of a slow machine's boot; the API needs none of it

    def __init__(self, host: NetHost = LOCAL_HOST, state: StateComponent | None = None,
                 routes: MeshRoutes | None = None, underlay: UnderlayWatch | None = None) -> None:
        """`state`: the state store's part, started before this one; the peers and the mesh
        address follow its views (without it the reconciler is driven by whoever holds it).
        `routes`: where this part writes who the mesh reaches, for the parts that send to
        peers. `underlay`: the host's address watch, shared with discovery; a mesh on
        another host (tests: a namespace) gets a watch of its own."""
        self.host = host
        self.state = state
        self.service: NodeService | None = None
        self.backend: WireGuardBackend | None = None
        self.reconciler: MeshReconciler | None = None
        self.error = ""
        self.follower: StateFollower | None = None
        self.routes = routes if routes is not None else MeshRoutes()
        self._api_site: web.TCPSite | None = None
        self._api_site_ip: str | None = None
        self._api_site_lock = asyncio.Lock()
        self.underlay = underlay

    async def start(self, service: NodeService) -> None:
        self.service = service
        s = service.settings.mesh
        if not s.enabled:
            return
        assert service.identity is not None
        kind: str = s.backend
        if kind == "auto":  # the capability probe's choice; probed now if not yet
            kind = service.prober.current.wireguard_backend
            if kind not in ("kernel", "wireguard-go"):
                kind = (await asyncio.to_thread(probes.wireguard))[1]  # walks /lib/modules
        try:
            backend = make_backend(kind, s.interface, self.host, s.wireguard_go_binary)
            if hasattr(backend, "on_restart"):
                backend.on_restart = self._restarted
            await backend.create(service.identity.wireguard_private_key, s.listen_port)
        except WireGuardError as exc:
            raise FormationError(f"mesh: cannot create {s.interface}: {exc}") from None
        self.backend = backend
        try:
            if s.address:
                await backend.add_address(s.address)
                # an address with the network's prefix already routes the whole network here
                if ipaddress.ip_interface(s.address).network != ipaddress.ip_network(s.network):
                    await backend.add_route(s.network)
        except (WireGuardError, OSError) as exc:
            await backend.delete()
            self.backend = None
            raise FormationError(f"mesh: cannot address {s.interface}: {exc}") from None
        self.reconciler = MeshReconciler(backend, s.persistent_keepalive_s)
        self._follow_state(service)
        if self.underlay is None:
            self.underlay = UnderlayWatch(self.host)
            await self.underlay.start(service)
        if self.follower is not None:
            self.underlay.exclude(self.follower.not_underlay)
        self.underlay.subscribe(self._underlay_changed)
        service.spawn(self._publish_status(s.status_interval_s))
        service.spawn(self._watch())
        log.info("mesh interface up", extra={"fields": {
            "interface": s.interface, "backend": backend.kind, "address": s.address or "-"}})

    def _follow_state(self, service: NodeService) -> None:
        """With a state store, peers and the mesh address come from its views."""
        if self.state is None:
            return  # no state store: the reconciler is driven by whoever holds it
        store = self.state.require_store()
        self.follower = StateFollower(self, store)
        store.subscribe(self.follower.notify)
        service.spawn(self.follower.run())

    def mesh_ip(self) -> str | None:
        """This node's mesh address as it is on the interface now."""
        assert self.service is not None
        configured = self.service.settings.mesh.address
        held = configured or (self.follower.address if self.follower else None)
        return str(ipaddress.ip_interface(held).ip) if held else None

    async def _watch(self) -> None:
        """Routes and handshake ages, the API on the mesh address."""
        while True:
            try:
                await self.watch_once()
            except (WireGuardError, OSError) as exc:
                log.warning("mesh watch failed", extra={"fields": {"error": str(exc)}})
            await asyncio.sleep(WATCH_EVERY_S)

    async def watch_once(self) -> None:
        assert self.service is not None
        backend, rec, follower = self.backend, self.reconciler, self.follower
        if backend is None or rec is None:
            return
        mesh_ip = self.mesh_ip()
        self.routes.refresh(await backend.status(), rec.node_ids,
                            follower.mesh_addresses if follower else {}, mesh_ip is not None)
        if mesh_ip != self._api_site_ip:
            await self.serve_api_on_mesh()

    async def _underlay_changed(self, old: list[str], new: list[str]) -> None:
        """Peers send WireGuard packets to the underlay addresses in this node's record: the
        follower rewrites them, and the peers are re-set (wireguard-go keeps a vanished source
        address otherwise)."""
        follower, rec = self.follower, self.reconciler
        assert self.service is not None
        if follower is None or rec is None or self.service.settings.mesh.endpoints:
            return
        follower.underlay = new
        follower.wake.set()
        await rec.renew_endpoints()

    async def serve_api_on_mesh(self) -> None:
        """Peers send their API requests to this node's mesh address: serve there too, on the
        API's port, unless the API already listens on every address (or not on TCP at all)."""
        async with self._api_site_lock:
            await self._serve_api_on_mesh()

    async def _serve_api_on_mesh(self) -> None:
        assert self.service is not None
        mesh_ip = self.mesh_ip()
        tcp = next((a.removeprefix("tcp:") for a in self.service.listen_addresses()
                    if a.startswith("tcp:")), None)
        if mesh_ip == self._api_site_ip or tcp is None:
            return
        host, _, port = tcp.rpartition(":")
        if every_address(host):
            self._api_site_ip = mesh_ip
            return
        if self._api_site is not None:
            await self._api_site.stop()
            self._api_site, self._api_site_ip = None, None
        if mesh_ip is None:
            return
        try:
            self._api_site = await self.service.listen_also(mesh_ip, int(port))
        except (OSError, RuntimeError) as exc:
            log.error("cannot serve the API on the mesh address; peers will fail to reach "
                      "this node over the mesh", extra={"fields": {
                          "address": f"{mesh_ip}:{port}", "error": str(exc)}})
            self._api_site_ip = mesh_ip  # not retried until the address changes
            return
        self._api_site_ip = mesh_ip
        log.info("node API on the mesh address", extra={"fields": {
            "address": f"{mesh_ip}:{port}"}})

    def _restarted(self, count: int) -> None:
        if self.service:
            self.service.publish("mesh", "restarted", {"restarts": count})

    async def status(self) -> MeshStatus:
        assert self.service is not None
        s = self.service.settings.mesh
        held = self.follower.address if self.follower else None
        base = MeshStatus(enabled=s.enabled, interface=s.interface, address=s.address or held)
        if self.backend is None:
            return base.model_copy(update={"error": "mesh.enabled is false" if not s.enabled
                                           else self.error})
        restarts = getattr(self.backend, "restarts", 0)
        try:
            current = await self.backend.status()
        except WireGuardError as exc:
            return base.model_copy(update={"backend": self.backend.kind, "error": str(exc),
                                           "restarts": restarts})
        node_ids = self.reconciler.node_ids if self.reconciler else {}
        return base.model_copy(update={
            "backend": self.backend.kind, "up": True, "public_key": current.public_key,
            "listen_port": current.listen_port, "restarts": restarts,
            "peers": status_model(current, node_ids, time.time()),
        })

    async def _publish_status(self, interval_s: float) -> None:
        """Every interval: re-apply the last desired set (repairs drift, moves unanswered
        peers to their next endpoint), then publish the status."""
        assert self.service is not None
        while True:
            rec = self.reconciler
            if rec is not None:
                try:
                    await rec.reapply()
                except WireGuardError as exc:
                    log.warning("mesh resync failed", extra={"fields": {"error": str(exc)}})
            current = await self.status()
            self.service.publish("mesh", "status", current.model_dump(mode="json"))
            await asyncio.sleep(interval_s)

    async def stop(self) -> None:
        if self.underlay is not None:
            self.underlay.unsubscribe(self._underlay_changed)
        self._api_site = None  # the service's runner closes it
        if self.reconciler is not None:
            self.reconciler.close()
        if self.backend is not None:
            await self.backend.delete()
            self.backend = None

    def api_handlers(self) -> object:
        return MeshHandlers(self)

    def health(self) -> list[m.HealthCheck]:
        if self.service is None or not self.service.settings.mesh.enabled:
            return []
        if self.backend is None:
            return [m.HealthCheck(name="mesh", ok=False, detail=self.error or "not created")]
        return [m.HealthCheck(name="mesh", ok=True,
                              detail=f"{self.backend.name} ({self.backend.kind})")]


class MeshHandlers:
    """The mesh's endpoints (kept apart from the component: its `health` is not an endpoint)."""

    def __init__(self, component: MeshComponent) -> None:
        self.component = component

    async def mesh_status(self, body: m.Empty, caller: Caller) -> MeshStatus:
        if self.component.service is None:
            raise Unavailable("The mesh is starting: try again shortly")
        return await self.component.status()
