"""tests/waiting.py, the suite's one wait helper: it returns the first truthy result, and a
timeout says what was awaited and the last value seen (a bare "timed out" sends the reader to
a debugger)."""

from __future__ import annotations

import itertools

import pytest
from waiting import until, until_sync, wait_for


async def test_until_returns_the_first_truthy_result_of_a_sync_or_async_check() -> None:
    counter = itertools.count()
    assert await until(lambda: next(counter) >= 2 and "ready", 5, 0.001) == "ready"

    async def later() -> int:
        return next(counter)

    assert await until(later, 5, 0.001) >= 3


async def test_a_timeout_names_what_was_awaited_its_last_value_and_the_context() -> None:
    with pytest.raises(AssertionError) as err:
        await until(lambda: [], 0.05, 0.01, what="the peers", context=lambda: "log: nothing")
    assert str(err.value) == "not within 0.05 s: the peers (last seen: [])\nlog: nothing"

    async def handshakes() -> int:
        return 0

    with pytest.raises(AssertionError, match=r"not within 0.02 s: handshakes \(last seen: 0\)"):
        await until(handshakes, 0.02, 0.01)


async def test_a_check_that_raises_ends_the_wait_at_once() -> None:
    def exited() -> bool:
        raise AssertionError("the node exited 1")

    with pytest.raises(AssertionError, match="the node exited 1"):
        await until(exited, 30)


async def test_wait_for_reports_the_seconds_it_took() -> None:
    assert 0 <= await wait_for(lambda: True, 5, "at once") < 1


def test_until_sync_blocks_between_checks_and_says_the_same_on_timeout() -> None:
    counter = itertools.count()
    assert until_sync(lambda: next(counter) == 3, 5, 0.001) is True
    with pytest.raises(AssertionError, match=r"not within 0.02 s: sshd \(last seen: None\)"):
        until_sync(lambda: None, 0.02, 0.005, what="sshd")
