"""Hybrid logical clock: wall milliseconds plus a counter. A new op's HLC is above every HLC the
replica has seen, so it orders after its causal past even when wall clocks disagree."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

Hlc = tuple[int, int]


class HybridClock:
    def __init__(self, wall_ms: Callable[[], int] | None = None) -> None:
        self._wall_ms = wall_ms or (lambda: time.time_ns() // 1_000_000)
        self._last: Hlc = (0, 0)
        self._lock = threading.Lock()

    @property
    def last(self) -> Hlc:
        return self._last

    def observe(self, hlc: Hlc) -> None:
        """Remember an applied op's time; later ticks are above it."""
        with self._lock:
            if hlc > self._last:
                self._last = hlc

    def tick(self) -> Hlc:
        with self._lock:
            wall = self._wall_ms()
            last = self._last
            self._last = (wall, 0) if wall > last[0] else (last[0], last[1] + 1)
            return self._last
