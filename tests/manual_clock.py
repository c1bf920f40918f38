"""A clock a test moves by hand: `clock.now += 5` stands for five seconds passing, so tests of
rate limits, buckets and round trips never sleep."""

from __future__ import annotations


class ManualClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
