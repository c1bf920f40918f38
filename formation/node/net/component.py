"""The mesh as a part of the node: when `mesh.enabled`, create the WireGuard interface with the
node's own key (backend chosen by the capability probe unless the settings force one), put the
mesh address on it, publish status events, and serve GET /v1/mesh. With a state store the
peers and the mesh address follow its views (follow.py); the reconciler applies them."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiohttp import web

from formation.api import models as m
from formation.api.mesh_models import MeshPeer, MeshStatus
from formation.errors import FormationError
from formation.node.capabilities import host as probes
from formation.node.net.backend import WireGuardBackend, make_backend
from formation.node.net.follow import StateFollower
from formation.node.net.host import LOCAL_HOST, NetHost
from formation.node.net.peers import InterfaceStatus, WireGuardError
from formation.node.net.reconcile import MeshReconciler
from formation.node.state.component import store_of

if TYPE_CHECKING:
    from formation.node.service import NodeService

log = logging.getLogger(__name__)


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

    def __init__(self, host: NetHost = LOCAL_HOST) -> None:
        self.host = host
        self.service: NodeService | None = None
        self.backend: WireGuardBackend | None = None
        self.reconciler: MeshReconciler | None = None
        self.error = ""
        self.follower: StateFollower | None = None

    async def start(self, service: NodeService) -> None:
        self.service = service
        s = service.settings.mesh
        if not s.enabled:
            return
        assert service.identity is not None
        kind = s.backend
        if kind == "auto":  # the capability probe's choice; probed now if not yet
            kind = service.prober.current.wireguard_backend
            if kind not in ("kernel", "wireguard-go"):
                kind = (await asyncio.to_thread(probes.wireguard))[1]  # walks /lib/modules
        try:
            backend = make_backend(kind, s.interface, self.host, s.wireguard_go_binary)
            if hasattr(backend, "on_restart"):
                backend.on_restart = self._restarted  # type: ignore[union-attr]
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
        service.spawn(self._publish_status(s.status_interval_s))
        log.info("mesh interface up", extra={"fields": {
            "interface": s.interface, "backend": backend.kind, "address": s.address or "-"}})

    def _follow_state(self, service: NodeService) -> None:
        """With a state store, peers and the mesh address come from its views."""
        try:
            store = store_of(service)
        except RuntimeError:
            return  # no state store: the reconciler is driven by whoever holds it
        self.follower = StateFollower(self, store)
        store.subscribe(self.follower.notify)
        service.spawn(self.follower.run())

    def _restarted(self, count: int) -> None:
        if self.service:
            self.service.publish("mesh", "restarted", {"restarts": count})

    async def status(self) -> MeshStatus:
        assert self.service is not None
        s = self.service.settings.mesh
        base = MeshStatus(enabled=s.enabled, interface=s.interface, address=s.address)
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
            if rec is not None and rec.last_desired is not None:
                try:
                    await rec.reconcile(rec.last_desired)
                except WireGuardError as exc:
                    log.warning("mesh resync failed", extra={"fields": {"error": str(exc)}})
            current = await self.status()
            self.service.publish("mesh", "status", current.model_dump(mode="json"))
            await asyncio.sleep(interval_s)

    async def stop(self) -> None:
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

    async def mesh_status(self, request: web.Request, body: m.Empty) -> MeshStatus:
        return await self.component.status()
