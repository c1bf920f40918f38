"""Round-trip time per peer, from heartbeats alone. Each heartbeat carries the sender's clock
reading `t` (milliseconds of its monotonic clock) and, for peers it heard lately, an echo
`[their t, how long it held it]`. When a node finds its own `t` echoed back it knows the round
trip: now - t - held. Both readings come from one clock each, so no clocks are compared across
hosts; the held time removes the wait between heartbeats. Smoothed like TCP's SRTT (1/8)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_ECHOES = 64
SMOOTHING = 0.125


@dataclass
class _Heard:
    their_t: float
    at_ms: float


class RoundTrips:
    def __init__(self, fresh_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.fresh_ms = fresh_s * 1000
        self.clock = clock
        self._heard: dict[str, _Heard] = {}
        self._rtt_ms: dict[str, float] = {}

    def _now_ms(self) -> float:
        return self.clock() * 1000

    def stamp(self) -> dict:
        """Fields for the next heartbeat: our clock, and echoes of what we heard lately."""
        now = self._now_ms()
        for node in [n for n, h in self._heard.items() if now - h.at_ms > self.fresh_ms]:
            del self._heard[node]
        recent = sorted(self._heard.items(), key=lambda kv: -kv[1].at_ms)[:MAX_ECHOES]
        return {"t": round(now, 3),
                "echo": {node: [h.their_t, round(now - h.at_ms, 3)] for node, h in recent}}

    def heard(self, node_id: str, my_id: str, payload: dict) -> float | None:
        """Notes a heartbeat from `node_id`; returns its smoothed round-trip time in ms when the
        heartbeat echoed one of ours (else the last known one, or None)."""
        now = self._now_ms()
        t = payload.get("t")
        if isinstance(t, int | float) and not isinstance(t, bool):
            self._heard[node_id] = _Heard(float(t), now)
        echo = payload.get("echo")
        mine = echo.get(my_id) if isinstance(echo, dict) else None
        if (isinstance(mine, list) and len(mine) == 2
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in mine)):
            sample = now - float(mine[0]) - float(mine[1])
            if 0 <= sample < 60_000:  # a bogus or replayed echo says nothing
                old = self._rtt_ms.get(node_id)
                self._rtt_ms[node_id] = sample if old is None else \
                    old + SMOOTHING * (sample - old)
        return self._rtt_ms.get(node_id)

    def rtt_ms(self, node_id: str) -> float | None:
        return self._rtt_ms.get(node_id)
