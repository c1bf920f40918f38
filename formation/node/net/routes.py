"""Which address to use for another node's API. Once the mesh is up, node-to-node traffic
(gossip, heartbeats, state replication) goes to the peer's mesh address, so the underlay carries
only WireGuard and discovery; until this node has its mesh address and a fresh handshake with
that peer, the underlay address is used as before (a new member's first contacts, a peer whose
WireGuard session has lapsed).

The mesh component refreshes a `MeshRoutes` from the interface every second; the parts that send
to peers are given the same `MeshRoutes` (node/parts.py) and ask it `api_address(key, underlay)`,
which answers the underlay address on a node without a mesh."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from formation.identity import node_id_for
from formation.node.net.peers import InterfaceStatus, join_endpoint

FRESH_HANDSHAKE_S = 180.0  # WireGuard's Reject-After-Time: an older session carries nothing


@dataclass
class MeshRoutes:
    """This node's view of who is reachable over the mesh right now, by node key (hex)."""

    up: bool = False  # this node's interface holds its mesh address
    mesh_addresses: dict[str, str] = field(default_factory=dict)  # node key -> mesh IP
    handshake_ages: dict[str, float] = field(default_factory=dict)  # node key -> seconds
    ages_by_node_id: dict[str, float] = field(default_factory=dict)  # what membership shows

    def refresh(self, status: InterfaceStatus, node_keys: Mapping[str, str],
                mesh_addresses: Mapping[str, str], up: bool, now: float | None = None) -> None:
        """`node_keys`: WireGuard key -> node key (the reconciler's map); `mesh_addresses`:
        node key -> mesh IP (from the nodes view)."""
        now = time.time() if now is None else now
        ages = {}
        for peer in status.peers:
            key = node_keys.get(peer.public_key)
            if key is not None and peer.latest_handshake:
                ages[key] = max(0.0, now - peer.latest_handshake)
        self.handshake_ages = ages
        self.ages_by_node_id = {node_id_for(bytes.fromhex(k)): a for k, a in ages.items()}
        self.mesh_addresses = dict(mesh_addresses)
        self.up = up

    def reachable(self, node_key: str) -> bool:
        age = self.handshake_ages.get(node_key)
        return self.up and age is not None and age < FRESH_HANDSHAKE_S \
            and node_key in self.mesh_addresses

    def api_address(self, node_key: str, underlay: str) -> str:
        """The peer's API on its mesh address (same port as its underlay API endpoint) when
        the mesh reaches it, else `underlay` unchanged."""
        if not self.reachable(node_key):
            return underlay
        port = underlay.rpartition(":")[2]
        if not port.isdigit():
            return underlay
        return join_endpoint(self.mesh_addresses[node_key], int(port))
