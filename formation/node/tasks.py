"""Stopping a background task the same way everywhere.

A part's `stop` cancels its supervisor or worker and must wait for it to finish, or the task
outlives the part (and a test's event loop) and logs "Task was destroyed but it is pending".
Whatever the task raised on its way out is of no interest to a part that is stopping it.
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
