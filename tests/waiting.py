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


class _Deadline:
    """The part both variants share: the time limit and what a timeout says."""

    def __init__(self, check: Check, timeout_s: float, what: str | None,
                 context: Callable[[], object] | None) -> None:
        self.check, self.timeout_s, self.what, self.context = check, timeout_s, what, context
        self.at = time.monotonic() + timeout_s

    def met(self, result: object) -> bool:
        """True once `result` is truthy; raises once the time is up without it."""
        if result:
            return True
        if time.monotonic() > self.at:
            name = self.what or getattr(self.check, "__name__", None) or "condition"
            more = f"\n{self.context()}" if self.context is not None else ""
            raise AssertionError(f"not within {self.timeout_s:g} s: {name} "
                                 f"(last seen: {result!r}){more}")
        return False


async def until(check: Check, timeout_s: float = 10.0, every_s: float = 0.1, *,
                what: str | None = None, context: Callable[[], object] | None = None,
                pause: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> Any:
    """Returns the check's first truthy result. `check` may be sync or async; it may raise to
    give up early (a process it waits on exited). `pause` is how to let time pass between
    checks (a Textual pilot's `pause` also lets the screen refresh). On timeout raises
    AssertionError naming `what` (else the check's name), its last result and, if given,
    `context()` (a log's tail, say)."""
    deadline = _Deadline(check, timeout_s, what, context)
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if deadline.met(result):
            return result
        await pause(every_s)


def until_sync(check: Callable[[], T], timeout_s: float = 10.0, every_s: float = 0.05, *,
               what: str | None = None, context: Callable[[], object] | None = None) -> T:
    """`until` for code without an event loop: blocks the calling thread between checks."""
    deadline = _Deadline(check, timeout_s, what, context)
    while not deadline.met(result := check()):
        time.sleep(every_s)
    return result


async def wait_for(check: Check, timeout_s: float, what: str, every_s: float = 0.05) -> float:
    """`until` that returns how many seconds the wait took (the mesh tests report it)."""
    start = time.monotonic()
    await until(check, timeout_s, every_s, what=what)
    return time.monotonic() - start

