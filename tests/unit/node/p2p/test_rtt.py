"""Round-trip time from heartbeat echoes, step by step with a fake clock on each side."""

from __future__ import annotations

import pytest
from manual_clock import ManualClock

from formation.node.p2p.rtt import RoundTrips


def test_an_echo_gives_the_round_trip_without_comparing_clocks() -> None:
    a_clock, b_clock = ManualClock(), ManualClock()
    b_clock.now = 5000.0  # another host's monotonic clock: unrelated to a's

    def advance(ms: float) -> None:
        a_clock.now += ms / 1000
        b_clock.now += ms / 1000

    a, b = RoundTrips(3.0, a_clock), RoundTrips(3.0, b_clock)
    beat = a.stamp()
    assert beat["echo"] == {}
    advance(10)  # one way
    assert b.heard("na", "nb", beat) is None  # nothing of b's came back yet
    advance(700)  # b holds a's stamp until its own next heartbeat
    reply = b.stamp()
    assert reply["echo"]["na"][1] == pytest.approx(700, abs=0.01)
    advance(10)
    assert a.heard("nb", "na", reply) == pytest.approx(20.0, abs=0.01)
    # a slower round is smoothed: 1/8 of the difference
    beat = a.stamp()
    advance(30)
    b.heard("na", "nb", beat)
    advance(100)
    reply = b.stamp()
    advance(30)
    assert a.heard("nb", "na", reply) == pytest.approx(20.0 + (60.0 - 20.0) / 8, abs=0.01)


def test_bogus_echoes_and_stale_peers_are_ignored() -> None:
    clock = ManualClock()
    rt = RoundTrips(1.0, clock)
    assert rt.heard("nb", "na", {"t": "x", "echo": {"na": [True, 0]}}) is None
    assert rt.heard("nb", "na", {"echo": {"na": [clock() * 1000 + 5000, 0]}}) is None  # future
    assert rt.heard("nb", "na", {"echo": "nonsense"}) is None
    rt.heard("nc", "na", {"t": 1.0})
    assert "nc" in rt.stamp()["echo"]
    clock.now += 2.0  # not heard for longer than fresh_s: no echo any more
    assert "nc" not in rt.stamp()["echo"]
