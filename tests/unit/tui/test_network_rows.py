"""How the console merges the network's sources into rows and counts: by node id, whichever
source knows a node, with this node first; roles from the state store's views."""

from __future__ import annotations

from datetime import UTC, datetime

from nacl.signing import SigningKey

from formation.api.discovery_models import DiscoveredPeer, DiscoveredPeers
from formation.api.mesh_models import MeshPeer, MeshStatus
from formation.api.models import IdentityInfo
from formation.api.p2p_models import Member, Members
from formation.identity.keys import node_id_for
from formation.tui.network import NetworkSnapshot
from formation.tui.network_rows import (
    ago,
    capabilities_text,
    instance_counts,
    member_counts,
    mesh_address,
    node_rows,
    role_of,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def key() -> tuple[str, str]:
    public = SigningKey.generate().verify_key.encode()
    return public.hex(), node_id_for(public)


def identity(pub: str, nid: str) -> IdentityInfo:
    return IdentityInfo(node_id=nid, public_key=pub, fingerprint="f", wireguard_public_key="w")


def snapshot() -> tuple[NetworkSnapshot, dict[str, tuple[str, str]]]:
    keys = {name: key() for name in ("admin", "member", "stranger")}
    (a_pub, a_id), (m_pub, m_id), (s_pub, s_id) = keys.values()
    net = NetworkSnapshot(
        views={
            "network": [{"name": "lab", "id": "ab" * 16, "cidr": "10.9.0.0/16",
                         "admins": [a_pub]}],
            "nodes": [{"key": a_pub, "roles": ["admin", "member"], "address": "10.9.0.1",
                       "capabilities": ["edge", "builder"]},
                      {"key": m_pub, "roles": ["member"], "address": "10.9.0.2"}],
            "addresses": [{"ip": "10.9.0.1", "node": a_pub},
                          {"ip": "10.9.0.2", "node": m_pub},
                          {"ip": "10.9.0.1", "node": m_pub, "lost": True}],
            "instances": [{"key": "1", "observed": {"state": "running"}},
                          {"key": "2", "observed": {"state": "running"}},
                          {"key": "3", "placement": m_pub}, {"key": "4"}],
        },
        members=Members(self_id=a_id, heartbeat_s=1, suspect_after_s=2, dead_after_s=3,
                        members=[Member(node_id=m_id, name="edge2", address="10.0.0.2:7170",
                                        state="suspect", last_heard_s=2.4, since=NOW,
                                        heartbeats=9)]),
        discovered=DiscoveredPeers(network="ab" * 16, mdns="on 10.0.0.1", peers=[
            DiscoveredPeer(node_id=s_id, name="new", public_key=s_pub, network="unenrolled",
                           address="10.0.0.3:7170", sources=["mdns"], kind="unenrolled",
                           trusted=False, first_seen=NOW, last_seen=NOW)]),
        mesh=MeshStatus(enabled=True, interface="formnet0", up=True, peers=[
            MeshPeer(public_key="k1", node_id=m_id, endpoint="10.0.0.2:51820",
                     handshake_age_s=30, rx_bytes=2048, tx_bytes=100),
            MeshPeer(public_key="k2", node_id=None, endpoint="10.0.0.9:51820")]),
    )
    return net, keys


def test_rows_merge_every_source_by_node_id() -> None:
    from formation.api.models import NodeStatus

    net, keys = snapshot()
    a_pub, a_id = keys["admin"]
    me = NodeStatus.model_construct(identity=identity(a_pub, a_id), name="edge1")
    rows = node_rows(net, me)
    assert rows[0].node_id == a_id  # this node first
    by_id = {r.node_id: r for r in rows}
    assert len(rows) == 3  # the mesh peer without a node id is not a node row
    assert (by_id[a_id].name, by_id[a_id].roles, by_id[a_id].member) == ("edge1", "admin", "self")
    assert by_id[a_id].capabilities == "builder,edge"  # what an admin gave it, sorted
    assert by_id[a_id].cells()[3] == "builder,edge"
    member = by_id[keys["member"][1]]
    assert (member.name, member.roles, member.mesh_ip, member.member, member.last_seen) == \
        ("edge2", "member", "10.9.0.2", "suspect", "2s")
    assert member.capabilities == "" and member.cells()[3] == "-"  # none given
    assert capabilities_text(rows) == "builder: edge1 · edge: edge1"
    assert capabilities_text([member]) is None
    assert (member.endpoint, member.handshake, member.traffic) == \
        ("10.0.0.2:51820", "30s", "2.0 kB/100 B")  # the mesh's endpoint wins over the API's
    stranger = by_id[keys["stranger"][1]]
    assert (stranger.kind, stranger.endpoint, stranger.roles) == \
        ("unenrolled", "10.0.0.3:7170", "")


def test_role_address_and_counts() -> None:
    net, keys = snapshot()
    admin, member, stranger = (identity(*keys[n]) for n in ("admin", "member", "stranger"))
    assert role_of(net, admin) == "admin" and role_of(net, member) == "node"
    assert role_of(net, stranger) == "none (not admitted)"
    assert role_of(NetworkSnapshot(), admin) == "none (not in a network)"
    assert mesh_address(net, member) == "10.9.0.2"  # its lost claim is not its address
    assert mesh_address(net, stranger) == "none"
    assert member_counts(net) == {"alive": 0, "suspect": 1, "dead": 0}
    assert instance_counts(net) == {"placed": 1, "running": 2, "unplaced": 1}
    assert (ago(None), ago(59.6), ago(600), ago(7300)) == ("never", "60s", "10m", "2h")
