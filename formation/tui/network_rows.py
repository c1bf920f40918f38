"""The network turned into what the screens show: one row per node merged from the state store,
membership, discovery and the mesh; this node's role and mesh address; counts. Pure functions of
a `NetworkSnapshot`, so they are tested without a terminal."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from formation.tui.presenter import rate

if TYPE_CHECKING:
    from formation.api.models import IdentityInfo, NodeStatus
    from formation.tui.network import NetworkSnapshot

MEMBER_STATES = ("alive", "suspect", "dead")


@dataclass
class NodeRow:
    node_id: str
    name: str = ""
    roles: str = ""  # from the state store; empty: not admitted
    capabilities: str = ""  # what an admin asked it to do: edge, builder (state store)
    mesh_ip: str = ""
    member: str = ""  # alive | suspect | dead | self | "" (no heartbeat heard)
    rtt: str = ""  # round trip of heartbeats, e.g. "1.2ms"
    last_seen: str = ""
    kind: str = ""  # discovery: peer | unenrolled | foreign
    endpoint: str = ""  # the node API (discovery) or the WireGuard endpoint (mesh)
    handshake: str = ""
    traffic: str = ""

    def cells(self) -> tuple[str, ...]:
        return (self.name or "?", self.node_id, self.roles or "-", self.capabilities or "-",
                self.mesh_ip or "-",
                self.member or "-", self.rtt or "-", self.last_seen or "-", self.kind or "-",
                self.endpoint or "-", self.handshake or "-", self.traffic or "-")


COLUMNS = (("name", 14), ("id", 27), ("roles", 12), ("caps", 12), ("mesh ip", 15),
           ("member", 7), ("rtt", 7), ("seen", 6), ("found", 10), ("endpoint", 21),
           ("handshake", 9), ("rx/tx", 19))
# What a narrow terminal keeps: who, whether it is alive and how close, its mesh address and
# WireGuard handshake, then the rest (capabilities: edge, builder, before how it was found); the
# long id and the byte counts go first.
PRIORITY = ("name", "member", "rtt", "mesh ip", "handshake", "roles", "seen", "endpoint",
            "caps", "found", "rx/tx", "id")


def _node_id(pubkey_hex: str) -> str:
    from formation.identity.keys import node_id_for  # PyNaCl: not needed for the first frame

    try:
        return node_id_for(bytes.fromhex(pubkey_hex))
    except ValueError:
        return pubkey_hex[:16]


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.0f}h"


def round_trip(ms: float | None) -> str:
    if ms is None:
        return ""
    return f"{ms:.2f}ms" if ms < 10 else f"{ms:.0f}ms"


def node_rows(net: NetworkSnapshot, me: NodeStatus | None = None) -> list[NodeRow]:
    """Every node any source knows of, keyed by node id; this node first."""
    rows: dict[str, NodeRow] = {}

    def row(node_id: str) -> NodeRow:
        return rows.setdefault(node_id, NodeRow(node_id))

    if me is not None:
        row(me.identity.node_id).member = "self"
        row(me.identity.node_id).name = me.name
    for item in net.view("nodes"):
        r = row(_node_id(item.get("key", "")))
        r.name = r.name or str(item.get("name") or "")
        r.roles = ",".join(x for x in item.get("roles", []) if x != "member") or "member"
        r.mesh_ip = str(item.get("address") or "")
        caps = item.get("capabilities")
        if isinstance(caps, list):
            r.capabilities = ",".join(sorted(str(c) for c in caps))
    if net.members is not None:
        for m in net.members.members:
            r = row(m.node_id)
            r.name = r.name or m.name
            r.member, r.last_seen = m.state, ago(m.last_heard_s)
            r.rtt = round_trip(m.rtt_ms)
            r.endpoint = r.endpoint or m.address
    if net.discovered is not None:
        for p in net.discovered.peers:
            r = row(p.node_id)
            r.name = r.name or p.name
            r.kind, r.endpoint = p.kind, p.address
    if net.mesh is not None:
        for peer in net.mesh.peers:
            if peer.node_id is None:
                continue
            r = row(peer.node_id)
            r.endpoint = peer.endpoint or r.endpoint
            r.handshake = ago(peer.handshake_age_s)
            r.traffic = f"{rate(peer.rx_bytes).removesuffix('/s')}/" \
                        f"{rate(peer.tx_bytes).removesuffix('/s')}"
    mine = me.identity.node_id if me is not None else ""
    return sorted(rows.values(), key=lambda r: (r.node_id != mine, r.name, r.node_id))


def capabilities_text(rows: list[NodeRow]) -> str | None:
    """Which nodes have each capability ("edge: h1, h2 · builder: h3"), at any width (the
    column may not fit); None when no node has any."""
    holders: dict[str, list[str]] = {}
    for row in rows:
        for capability in filter(None, row.capabilities.split(",")):
            holders.setdefault(capability, []).append(row.name or row.node_id[:12])
    if not holders:
        return None
    return " · ".join(f"{c}: {', '.join(sorted(names))}" for c, names in sorted(holders.items()))


def role_of(net: NetworkSnapshot, me: IdentityInfo) -> str:
    """admin, node, or none: from the network's admins and the nodes view."""
    network = net.network
    if network is None:
        return "none (not in a network)"
    if me.public_key in network.get("admins", []):
        return "admin"
    for item in net.view("nodes"):
        if item.get("key") == me.public_key and item.get("roles"):
            return "node"
    return "none (not admitted)"


def mesh_address(net: NetworkSnapshot, me: IdentityInfo) -> str:
    for item in net.view("addresses"):
        if item.get("node") == me.public_key and not item.get("lost"):
            return str(item["ip"])
    return "none"


def member_counts(net: NetworkSnapshot) -> dict[str, int]:
    counts: Counter[str] = (Counter(m.state for m in net.members.members) if net.members
                            else Counter())
    return {state: counts.get(state, 0) for state in MEMBER_STATES}


def instance_state(item: dict) -> str:
    """What the node running it last reported, else that it has not reported yet."""
    observed = item.get("observed")
    if isinstance(observed, dict) and observed.get("state"):
        return str(observed["state"])
    return "placed" if item.get("placement") else "unplaced"


def instance_counts(net: NetworkSnapshot) -> dict[str, int]:
    return dict(sorted(Counter(instance_state(i) for i in net.view("instances")).items()))


def counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in counts.items()) or "none"
