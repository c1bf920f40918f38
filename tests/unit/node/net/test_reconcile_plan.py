"""The reconciler's plan: the fewest per-peer changes, never a wholesale replacement."""

from __future__ import annotations

import base64

import pytest

from formation.node.net.peers import InterfaceStatus, PeerStatus, WireGuardError
from formation.node.net.reconcile import DesiredPeer, plan_changes


def key(n: int) -> str:
    return base64.b64encode(bytes([n]) * 32).decode()


OWN = key(0)


def actual(*peers: PeerStatus) -> InterfaceStatus:
    return InterfaceStatus("formnet0", OWN, 51820, peers)


def have(n: int, endpoint: str, *ips: str, keepalive: int = 25) -> PeerStatus:
    return PeerStatus(key(n), endpoint, ips, keepalive, latest_handshake=1.0)


def want(n: int, *endpoints: str, ips: tuple[str, ...] = ()) -> DesiredPeer:
    return DesiredPeer(f"n{n}", key(n), endpoints, ips)


def test_nothing_to_do_when_actual_matches() -> None:
    current = actual(have(1, "198.18.0.1:51820", "10.88.0.1/32"))
    assert plan_changes([want(1, "198.18.0.1:51820", ips=("10.88.0.1/32",))], current) == []


def test_adds_removes_and_updates_only_what_differs() -> None:
    current = actual(
        have(1, "198.18.0.1:51820", "10.88.0.1/32"),  # unchanged
        have(2, "198.18.0.2:51820", "10.88.0.2/32"),  # endpoint moves
        have(3, "198.18.0.3:51820", "10.88.0.3/32"),  # leaves
    )
    plan = plan_changes([
        want(0, "198.18.0.9:51820"),  # the node itself: skipped
        want(1, "198.18.0.1:51820", ips=("10.88.0.1/32",)),
        want(2, "198.18.0.22:51820", ips=("10.88.0.2/32",)),
        want(4, "198.18.0.4:51820", ips=("10.88.0.4/32", "10.88.4.0/24")),
    ], current)
    assert [(c.action, c.node_id or c.public_key) for c in plan] == [
        ("remove", key(3)), ("update", "n2"), ("add", "n4")]
    update = plan[1]
    assert update.config is not None and update.config.endpoint == "198.18.0.22:51820"
    assert update.reason == "endpoint 198.18.0.2:51820 -> 198.18.0.22:51820"
    assert plan[2].config is not None
    assert plan[2].config.allowed_ips == ("10.88.0.4/32", "10.88.4.0/24")


def test_endpoint_in_use_is_kept_while_still_listed() -> None:
    current = actual(have(1, "198.18.0.11:51820", "10.88.0.1/32"))
    both = want(1, "198.18.0.1:51820", "198.18.0.11:51820", ips=("10.88.0.1/32",))
    assert plan_changes([both], current) == []


def test_allowed_ips_and_keepalive_changes_are_updates() -> None:
    current = actual(have(1, "198.18.0.1:51820", "10.88.0.1/32", keepalive=0))
    plan = plan_changes([want(1, "198.18.0.1:51820", ips=("10.88.0.1/32", "10.88.1.0/24"))],
                        current, persistent_keepalive=25)
    assert [c.action for c in plan] == ["update"]
    assert "allowed IPs" in plan[0].reason and "keepalive 0 -> 25" in plan[0].reason


def test_no_endpoint_known_leaves_the_peer_to_reach_us() -> None:
    plan = plan_changes([want(5, ips=("10.88.0.5/32",))], actual())
    assert plan[0].config is not None and plan[0].config.endpoint is None


def test_two_nodes_with_one_key_is_an_error() -> None:
    clash = [DesiredPeer("n1", key(1)), DesiredPeer("n9", key(1))]
    with pytest.raises(WireGuardError, match="n1 and n9"):
        plan_changes(clash, actual())


def test_held_peers_are_added_without_keepalive() -> None:
    plan = plan_changes([want(1, "198.18.0.1:51820"), want(2, "198.18.0.2:51820")], actual(),
                        persistent_keepalive=25, held={key(2)})
    keepalives = {c.public_key: c.config.persistent_keepalive for c in plan if c.config}
    assert keepalives == {key(1): 25, key(2): 0}


def test_an_unanswered_endpoint_moves_to_the_next_one_round_the_list() -> None:
    current = actual(have(1, "198.18.0.2:51820", "10.88.0.1/32"))
    peer = want(1, "198.18.0.1:51820", "198.18.0.2:51820", ips=("10.88.0.1/32",))
    assert plan_changes([peer], current) == []
    (change,) = plan_changes([peer], current, unanswered={key(1)})
    assert change.config is not None and change.config.endpoint == "198.18.0.1:51820"
    single = want(1, "198.18.0.2:51820", ips=("10.88.0.1/32",))
    assert plan_changes([single], current, unanswered={key(1)}) == []


def test_a_roamed_endpoint_is_kept_until_the_state_catches_up() -> None:
    """The peer moved and WireGuard followed it (authenticated packets from the new address);
    the nodes view still lists the old address: pointing it back would cut the session."""
    current = actual(have(1, "198.18.0.101:51820", "10.88.0.1/32"))
    old = want(1, "198.18.0.1:51820", ips=("10.88.0.1/32",))
    assert plan_changes([old], current, roamed={key(1)}) == []
    [change] = plan_changes([old], current)  # not roamed: this reconciler re-points it
    assert change.config is not None and change.config.endpoint == "198.18.0.1:51820"


def test_a_node_that_joins_later_is_not_held_whatever_its_key() -> None:
    """Held: a higher-key peer of the first peer set (both sides learn of each other at once).
    Not held: a peer that appears later, which already has this node and waits for it."""
    from formation.node.net.reconcile import MeshReconciler

    rec = MeshReconciler(backend=None)  # type: ignore[arg-type]  # _hold reads no interface
    first = [want(1), want(2)]
    assert rec._hold(actual(), first) == {key(1), key(2)}  # OWN (key 0) is lower: both wait
    assert rec._hold(actual(), [*first, want(3)]) == {key(1), key(2)}  # key 3 joined later
