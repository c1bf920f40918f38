"""Stopping a background task the same way everywhere.

A part's `stop` cancels its supervisor or worker and must wait for it to finish, or the task
outlives the part (and a test's event loop) and logs "Task was destroyed but it is pending".
Whatever the task raised on its way out is of no interest to a part that is stopping it.

A loop that waits for a wake-up or a timeout must wait with `wait_event`, never with
`asyncio.wait_for(event.wait(), ...)`: on Python 3.11, `wait_for` returns normally when the
event is set in the same turn of the loop as the task is cancelled, the cancellation is lost,
the loop goes round again, and whoever waits for the task to stop waits forever (a CI run
hung two minutes in a node's shutdown this way).
"""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancels `task` (if any) and waits until it has finished."""
    if task is None:
        return
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """Waits until `event` is set or `timeout_s` has passed; True when it was set. A
    cancellation always propagates (see the module's docstring)."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return False
    return True
