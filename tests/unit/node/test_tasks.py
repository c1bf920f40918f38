"""cancel_and_wait: a part's stop waits for its task, whatever the task raised on its way out."""

from __future__ import annotations

import asyncio

from formation.node.tasks import cancel_and_wait


async def test_the_task_has_finished_when_it_returns() -> None:
    cleaned: list[str] = []

    async def worker() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0)  # cleanup that itself awaits: cancel alone would not wait
            cleaned.append("done")

    task = asyncio.get_running_loop().create_task(worker())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.done() and cleaned == ["done"]


async def test_an_error_raised_while_stopping_is_not_the_callers() -> None:
    async def worker() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            raise RuntimeError("broken on the way out")

    task = asyncio.get_running_loop().create_task(worker())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert isinstance(task.exception(), RuntimeError)
    await cancel_and_wait(None)  # nothing started: nothing to do
