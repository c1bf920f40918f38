"""Hybrid logical clock: wall milliseconds plus a counter. A new op's HLC is above every HLC the
replica has accepted, so it orders after its causal past even when wall clocks disagree.

A peer's timestamp must never drag this clock far into the future: one op stamped "year 9999"
would otherwise make every later local op carry that stamp (and overflow the encoding at its
end). So the clock never moves beyond the local wall clock plus MAX_SKEW_MS; the replica holds
back ops stamped later than that until their time comes (see held.py and docs/protocol.md)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from formation.node.state.op import MAX_HLC_COUNTER, MAX_HLC_MS

Hlc = tuple[int, int]

MAX_SKEW_MS = 60_000  # how far ahead of our wall clock an accepted op (and our clock) may be
# No correct node's clock is past this (year 3000, in Unix ms): an op stamped later is refused
# outright, by every replica alike, whatever its own wall clock says (a pure function of the op).
HORIZON_MS = 32_503_680_000_000
assert HORIZON_MS < MAX_HLC_MS


def wall_now_ms() -> int:
    return time.time_ns() // 1_000_000


class HybridClock:
    def __init__(self, wall_ms: Callable[[], int] | None = None) -> None:
        self._wall_ms = wall_ms or wall_now_ms
        self._last: Hlc = (0, 0)
        self._lock = threading.Lock()

    @property
    def last(self) -> Hlc:
        return self._last

    def wall(self) -> int:
        return self._wall_ms()

    def ceiling(self) -> int:
        """The latest wall part this clock (and an op it accepts) may carry now."""
        return self._wall_ms() + MAX_SKEW_MS

    def observe(self, hlc: Hlc) -> None:
        """Remember an applied op's time; later ticks are above it. Never beyond the ceiling:
        an op from further ahead (an old log written by a node whose clock was wrong) does not
        move the clock there (append then leaves such heads out of a new op's parents)."""
        with self._lock:
            limit = (self.ceiling(), 0)
            hlc = min(hlc, limit)
            if hlc > self._last:
                self._last = hlc

    def tick(self) -> Hlc:
        with self._lock:
            wall = self._wall_ms()
            last = self._last
            if wall > last[0]:
                self._last = (wall, 0)
            elif last[1] + 1 < MAX_HLC_COUNTER:
                self._last = (last[0], last[1] + 1)
            else:  # the counter is full (a peer stamped the maximum): move to the next ms
                self._last = (last[0] + 1, 0)
            return self._last
