"""Deriving the mesh from the nodes view: who is a peer, with which endpoints and allowed IPs,
and that a changed or removed node turns into exactly one per-peer change."""

from __future__ import annotations

import base64

from formation.node.net.follow import allowed_ips_for, desired_peers, wg_endpoints
from formation.node.net.peers import InterfaceStatus, PeerStatus
from formation.node.net.reconcile import plan_changes

CIDR = "10.42.0.0/16"


def wg(n: int) -> str:
    return base64.b64encode(bytes([n]) * 32).decode()


def node(n: int, address: str | None, endpoints: list[str], *, key: bool = True,
         roles: tuple[str, ...] = ("member",)) -> dict:
    record = {"key": f"{n:064x}", "name": f"h{n}", "roles": list(roles), "address": address,
              "wg_endpoints": endpoints}
    if key:
        record["wireguard_key"] = wg(n)
    return record


def test_every_other_member_with_key_and_address_is_a_peer() -> None:
    nodes = [node(1, "10.42.0.1", ["192.0.2.1:51820"]),
             node(2, "10.42.0.2", ["192.0.2.2:51820", "198.51.100.2:51820"]),
             node(3, None, ["192.0.2.3:51820"]),  # no mesh address yet
             node(4, "10.42.0.4", [], key=False)]  # no WireGuard key published yet
    peers = desired_peers(nodes, f"{1:064x}", CIDR, 24)
    assert [(p.node_id, p.public_key) for p in peers] == [(f"{2:064x}", wg(2))]
    assert peers[0].endpoints == ("192.0.2.2:51820", "198.51.100.2:51820")
    assert peers[0].allowed_ips == ("10.42.0.2/32", "10.42.2.0/24")


def test_allowed_ips_without_a_vm_subnet_slot_are_the_mesh_address_only() -> None:
    assert allowed_ips_for("10.42.0.7", CIDR, 24) == ("10.42.0.7/32", "10.42.7.0/24")
    assert allowed_ips_for("10.42.9.1", CIDR, 24) == ("10.42.9.1/32",)  # outside the pool
    assert allowed_ips_for("10.42.0.7", "not-a-cidr", 24) == ("10.42.0.7/32",)


def test_wg_endpoints_come_from_settings_else_from_api_hosts() -> None:
    assert wg_endpoints(["192.0.2.1:7700", "192.0.2.1:7701", "[2001:db8::1]:7700"], [], 51820) \
        == ["192.0.2.1:51820", "[2001:db8::1]:51820"]
    assert wg_endpoints(["192.0.2.1:7700"], ["203.0.113.9:4000"], 51820) == ["203.0.113.9:4000"]
    assert wg_endpoints([], [], 51820) == []


def test_changed_endpoint_repoints_and_removed_node_loses_its_peer() -> None:
    me = f"{1:064x}"
    current = InterfaceStatus("formnet0", wg(1), 51820, (
        PeerStatus(wg(2), "192.0.2.2:51820", ("10.42.0.2/32", "10.42.2.0/24"), 25, 1.0),
        PeerStatus(wg(3), "192.0.2.3:51820", ("10.42.0.3/32", "10.42.3.0/24"), 25, 1.0)))
    nodes = [node(1, "10.42.0.1", []), node(2, "10.42.0.2", ["192.0.2.22:51820"]),
             node(3, "10.42.0.3", ["192.0.2.3:51820"], roles=())]  # node.remove: no roles
    changes = plan_changes(desired_peers(nodes, me, CIDR, 24), current)
    assert [(c.action, c.public_key) for c in changes] == [("remove", wg(3)), ("update", wg(2))]
    assert changes[1].config is not None and changes[1].config.endpoint == "192.0.2.22:51820"
