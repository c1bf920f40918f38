"""The mesh follows the replicated state: this node writes its WireGuard key and underlay
endpoints into its own node record, and every `state` event (debounced) re-derives the desired
peers from the nodes view — every other member with a WireGuard key and a mesh address — and
hands them to the reconciler, which changes one peer at a time. The interface address is the
mesh address this node holds in the addresses view; when a concurrent claim took it, the
interface gives it up and moves to the address claimed next (the peers' allowed IPs follow the
same view), and a node removed from the network takes its address off. The WireGuard endpoints
written are the host's current underlay addresses (underlay_watch.py): the mesh component wakes
the follower when they change."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from formation.node.net.addressing import AddressingError, MeshLayout, NodeAddresses
from formation.node.net.peers import WireGuardError
from formation.node.net.reconcile import DesiredPeer
from formation.node.net.underlay import wg_endpoints
from formation.node.net.vm_addresses import layout_of, moved, subnet_of
from formation.node.state.op import OpError

if TYPE_CHECKING:
    from formation.node.net.component import MeshComponent
    from formation.node.state.store import StateStore

log = logging.getLogger(__name__)

DEBOUNCE_S = 0.05
RETRY_S = 2.0


def allowed_ips_for(address: str, cidr: str, vm_prefix: int) -> tuple[str, ...]:
    """A node's mesh /32, and its VM subnet when its address is one of the layout's slots."""
    own = (f"{address}/32",)
    try:
        layout = MeshLayout.parse(cidr, vm_prefix)
        slot = int(ipaddress.ip_address(address)) - int(layout.network.network_address)
        return layout.addresses(slot).allowed_ips()
    except (AddressingError, ValueError):
        return own


def desired_peers(nodes: Sequence[dict[str, Any]], me: str, cidr: str,
                  vm_prefix: int, moved: dict[str, list[str]] | None = None
                  ) -> list[DesiredPeer]:
    """Every member node but `me` that published a WireGuard key and holds a mesh address.
    `moved`: node -> /32s of instances it runs outside its own VM subnet (they migrated
    there; vm_addresses.moved): its AllowedIPs carry them too, so the mesh sends them there."""
    peers = []
    for node in nodes:
        key, wg_key, address = node["key"], node.get("wireguard_key"), node.get("address")
        if key == me or not wg_key or not address or not node.get("roles"):
            continue
        peers.append(DesiredPeer(node_id=key, public_key=wg_key,
                                 endpoints=tuple(node.get("wg_endpoints") or ()),
                                 allowed_ips=(*allowed_ips_for(address, cidr, vm_prefix),
                                              *(moved or {}).get(key, ()))))
    return peers


class StateFollower:
    """Keeps one mesh component in line with one state store."""

    def __init__(self, mesh: MeshComponent, store: StateStore) -> None:
        self.mesh = mesh
        self.store = store
        self.wake = asyncio.Event()
        self.address: str | None = None  # the interface address this follower put there
        self.mesh_addresses: dict[str, str] = {}  # node key -> mesh IP, from the nodes view
        self.underlay: list[str] | None = None  # as the mesh's underlay watch read it
        self.cidr: str | None = None  # the network's, from the state
        self.vm_routes: set[str] = set()  # /32s of our subnet's instances running elsewhere

    def not_underlay(self) -> list[str]:
        """Networks whose addresses are never underlay endpoints: the mesh (and VM subnets)."""
        assert self.mesh.service is not None
        return [n for n in (self.cidr, self.mesh.service.settings.mesh.network) if n]

    def notify(self, ops: list, origin: str | None) -> None:
        self.wake.set()

    async def run(self) -> None:
        self.wake.set()
        while True:
            await self.wake.wait()
            await asyncio.sleep(DEBOUNCE_S)  # a burst of ops makes one pass
            self.wake.clear()
            try:
                await self.sync_once()
            except (WireGuardError, OpError, OSError) as exc:
                log.warning("mesh: cannot follow the state", extra={"fields": {"error": str(exc)}})
                await asyncio.sleep(RETRY_S)
                self.wake.set()

    async def sync_once(self) -> None:
        mesh, store = self.mesh, self.store
        service, reconciler, backend = mesh.service, mesh.reconciler, mesh.backend
        assert service is not None and service.identity is not None
        if reconciler is None or backend is None:
            return
        me = service.identity.public_key_hex
        if me not in store.members:
            if reconciler.last_desired:  # removed from the network: no peers any more
                await reconciler.reconcile([])
            # ... and no mesh address: the removal freed it, and it may be allotted again
            await self._ensure_address(None, "")
            return
        network = await store.view("network")
        cidr = network[0].get("cidr") if network else None
        if not cidr:
            return
        self.cidr = cidr
        nodes = await store.view("nodes")
        self.mesh_addresses = {n["key"]: n["address"] for n in nodes if n.get("address")}
        mine = next((n for n in nodes if n["key"] == me), None)
        await self._ensure_address((mine or {}).get("address"), cidr)
        s = service.settings.mesh
        layout = layout_of(cidr, s.vm_prefix)
        moved_32s = moved(await store.view("instances"), nodes, layout) if layout else {}
        await reconciler.reconcile(desired_peers(nodes, me, cidr, s.vm_prefix, moved_32s))
        if layout is not None:
            await self._route_moved(subnet_of(layout, (mine or {}).get("address")), moved_32s,
                                    me)
        # Only now tell the others our key: a peer that adds us starts a handshake at once,
        # and it is dropped unless we already have that peer.
        await self._record_self(mine)

    async def _route_moved(self, mine: NodeAddresses | None, moved_32s: dict[str, list[str]],
                           me: str) -> None:
        # imported on first use: it brings pyroute2, which a starting node does not need yet
        from formation.node.net.vm_network import route_moved

        service = self.mesh.service
        assert service is not None
        self.vm_routes = await route_moved(self.mesh.host, service.settings.mesh.interface,
                                           mine, moved_32s, me, self.vm_routes)

    async def _record_self(self, mine: dict | None) -> None:
        service, backend = self.mesh.service, self.mesh.backend
        assert service is not None and service.identity is not None and backend is not None
        s = service.settings.mesh
        port = (await backend.status()).listen_port or s.listen_port
        key = service.identity.wireguard_public_key
        if self.underlay is None and not s.endpoints and self.mesh.underlay is not None:
            self.underlay = await self.mesh.underlay.addresses()
        endpoints = wg_endpoints((mine or {}).get("endpoints") or [], s.endpoints, port,
                                 self.underlay)
        if mine and mine.get("wireguard_key") == key and (
                mine.get("wg_endpoints") == endpoints or not endpoints):
            return  # unchanged, or no address at all for a moment (being replaced): keep it
        name = (mine or {}).get("name") or service.settings.name
        await self.store.append("node.record", {"name": name, "wireguard_key": key,
                                                "wg_endpoints": endpoints})

    async def _ensure_address(self, address: str | None, cidr: str) -> None:
        """Puts the claimed mesh address (with the network's prefix) on the interface, and
        takes a lost one off. A node configured with `mesh.address` keeps that one."""
        service, backend = self.mesh.service, self.mesh.backend
        assert service is not None and backend is not None
        if service.settings.mesh.address:
            return
        wanted = f"{address}/{ipaddress.ip_network(cidr).prefixlen}" if address else None
        if wanted == self.address:
            return
        if self.address is not None:
            # lost to a concurrent claim, re-allocated, or freed by this node's removal
            log.warning("mesh address changed", extra={"fields": {
                "from": self.address, "to": wanted or "-"}})
            await backend.remove_address(self.address)
            self.address = None
        if wanted is None:
            return
        await backend.add_address(wanted)
        self.address = wanted
        log.info("mesh address from the state", extra={"fields": {"address": wanted}})
        await self.mesh.serve_api_on_mesh()
