"""The membership state machine, stepped with an explicit clock."""

from __future__ import annotations

from formation.node.p2p.membership import MembershipTable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _kinds(transitions) -> list[tuple[str, str]]:
    return [(t.node_id, t.kind) for t in transitions]


def test_silence_makes_suspect_then_dead_and_a_heartbeat_revives():
    clock = Clock()
    table = MembershipTable(suspect_after_s=2.0, dead_after_s=3.0, clock=clock)
    joined = table.heard("a", "h1", "10.0.0.1:7170")
    assert (joined.kind, joined.previous) == ("joined", None)
    clock.now += 1.9
    assert table.tick() == []
    clock.now += 0.2
    assert _kinds(table.tick()) == [("a", "suspect")]
    assert table.tick() == []  # a state is entered once
    clock.now += 1.0
    assert _kinds(table.tick()) == [("a", "dead")]
    assert table.get("a").state == "dead"
    revived = table.heard("a", "h1", "10.0.0.1:7170")
    assert (revived.kind, revived.previous) == ("revived", "dead")
    assert table.get("a").heartbeats == 2


def test_suspect_heard_again_is_alive_not_revived():
    clock = Clock()
    table = MembershipTable(2.0, 3.0, clock=clock)
    table.heard("a", "h1", "x:1")
    clock.now += 2.5
    table.tick()
    back = table.heard("a", "", "")
    assert (back.kind, back.previous) == ("alive", "suspect")
    assert (table.get("a").name, table.get("a").address) == ("h1", "x:1")  # kept when blank
    assert table.heard("a", "h1", "x:1") is None  # alive stays alive silently


def test_long_silence_jumps_straight_to_dead_and_members_age_independently():
    clock = Clock()
    table = MembershipTable(2.0, 3.0, clock=clock)
    table.heard("a", "h1", "x:1")
    clock.now += 1.5
    table.heard("b", "h2", "x:2")
    clock.now += 10
    assert sorted(_kinds(table.tick())) == [("a", "dead"), ("b", "dead")]
    model = table.to_model(table.get("b"))
    assert model.state == "dead" and model.last_heard_s == 10.0
