"""What the console knows about the network, read from the node in one go: the state store
(status and the network, nodes, addresses and instances views), membership, discovery and the
mesh. Each source may fail on its own (a node without that part answers 503): the others still
show, and the failure is kept as a sentence for the screen."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from formation.api import discovery_routes, mesh_routes, p2p_routes, route_routes, state_routes
from formation.api.discovery_models import DiscoveredPeers
from formation.api.mesh_models import MeshStatus
from formation.api.p2p_models import Members
from formation.api.route_models import RouteList
from formation.api.state_models import StateStatus
from formation.errors import FormationError

if TYPE_CHECKING:
    from formation.tui.link import NodeLink

VIEWS = ("network", "nodes", "addresses", "instances")
# Event topics after which the network is read again.
NETWORK_TOPICS = frozenset({"membership", "discovery", "mesh", "state"})


@dataclass
class NetworkSnapshot:
    status: StateStatus | None = None
    views: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    members: Members | None = None
    discovered: DiscoveredPeers | None = None
    mesh: MeshStatus | None = None
    routes: RouteList | None = None  # with their backends' health (the routes screen)
    errors: dict[str, str] = field(default_factory=dict)  # source -> why it could not be read

    @property
    def network(self) -> dict[str, Any] | None:
        """The network record (name, id, cidr, admins), None when this node is in none."""
        items = self.views.get("network") or []
        return items[0] if items else None

    def view(self, name: str) -> list[dict[str, Any]]:
        return self.views.get(name) or []


async def _read(snapshot: NetworkSnapshot, source: str, request) -> Any:
    try:
        return await request
    except FormationError as exc:  # ApiError (e.g. 503: no such part) and NodeUnreachable
        snapshot.errors[source] = str(exc)
        return None


async def fetch_network(link: NodeLink) -> NetworkSnapshot:
    """Every source at once, each with the link's timeout."""
    snap = NetworkSnapshot()
    view_calls = [_read(snap, f"state view {v}", link.call(state_routes.state_view, collection=v))
                  for v in VIEWS]
    status, members, discovered, mesh, routes, *views = await asyncio.gather(
        _read(snap, "state store", link.call(state_routes.state_status)),
        _read(snap, "membership", link.call(p2p_routes.members)),
        _read(snap, "discovery", link.call(discovery_routes.discovery_peers)),
        _read(snap, "mesh", link.call(mesh_routes.mesh_status)),
        _read(snap, "routes", link.call(route_routes.route_list)),
        *view_calls,
    )
    snap.status, snap.members, snap.discovered, snap.mesh = status, members, discovered, mesh
    snap.routes = routes
    snap.views = {name: v.items for name, v in zip(VIEWS, views, strict=True) if v is not None}
    return snap
