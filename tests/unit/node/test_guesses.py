"""The join door's guess throttle: a bucket of failed attempts per address, bounded memory."""

from __future__ import annotations

from manual_clock import ManualClock

from formation.node.guesses import GuessThrottle


def test_failures_empty_the_bucket_and_time_refills_it() -> None:
    clock = ManualClock()
    throttle = GuessThrottle(burst=3, every_s=10, clock=clock)
    for _ in range(3):
        assert throttle.retry_after_s("10.0.0.1") == 0
        throttle.failed("10.0.0.1")
    assert throttle.retry_after_s("10.0.0.1") == 10
    assert throttle.retry_after_s("10.0.0.2") == 0, "per address"
    clock.now += 4
    assert throttle.retry_after_s("10.0.0.1") == 6
    clock.now += 6
    assert throttle.retry_after_s("10.0.0.1") == 0
    throttle.failed("10.0.0.1")
    assert throttle.retry_after_s("10.0.0.1") == 10


def test_memory_is_bounded_to_the_most_recent_addresses() -> None:
    throttle = GuessThrottle(burst=1, every_s=60, max_sources=100, clock=ManualClock())
    for n in range(1000):
        throttle.failed(f"10.0.{n // 256}.{n % 256}")
    assert len(throttle) == 100
    assert throttle.retry_after_s("10.0.3.231") > 0  # the most recent is still slowed
