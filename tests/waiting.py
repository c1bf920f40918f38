"""Waiting for a condition in tests: poll it until it holds or the time is up, then fail saying
what was awaited and the last value it gave. The one wait helper of the suite: async tests use
`until`, code outside an event loop (threads, subprocess harnesses) `until_sync`, console tests
pass their pilot's `pause` so the app keeps drawing between checks.

A fixed sleep either wastes time (the thing happened long before) or flakes (a loaded machine
took longer); a condition does neither. A test that asserts something did *not* happen waits
instead for a positive control: something that would have come after it."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

Check = Callable[[], Any]  # returns a value, or an awaitable of one; truthy ends the wait


def _name(check: Check, what: str | None) -> str:
    return what or getattr(check, "__name__", None) or "condition"


def _timed_out(check: Check, what: str | None, timeout_s: float, last: object) -> AssertionError:
    return AssertionError(f"not within {timeout_s:g} s: {_name(check, what)} "
                          f"(last seen: {last!r})")


async def until(check: Check, timeout_s: float = 10.0, every_s: float = 0.1, *,
                what: str | None = None,
                pause: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> Any:
    """Returns the check's first truthy result. `check` may be sync or async. `pause` is how to
    let time pass between checks (a Textual pilot's `pause` also lets the screen refresh).
    Raises AssertionError naming `what` (else the check's name) and its last result."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise _timed_out(check, what, timeout_s, result)
        await pause(every_s)


def until_sync(check: Callable[[], T], timeout_s: float = 10.0, every_s: float = 0.05, *,
               what: str | None = None) -> T:
    """`until` for code without an event loop: blocks the calling thread between checks."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise _timed_out(check, what, timeout_s, result)
        time.sleep(every_s)


async def wait_for(check: Check, timeout_s: float, what: str, every_s: float = 0.05) -> float:
    """`until` that returns how many seconds the wait took (the mesh tests report it)."""
    start = time.monotonic()
    await until(check, timeout_s, every_s, what=what)
    return time.monotonic() - start


def wait_until(check: Check, timeout_s: float, what: str) -> None:
    """`until_sync` under the name the process harness used."""
    until_sync(check, timeout_s, what=what)
