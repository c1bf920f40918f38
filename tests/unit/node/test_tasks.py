"""cancel_and_wait: a part's stop waits for its task, whatever the task raised on its way out.
wait_event: a loop waiting for a wake-up or a timeout always ends when it is cancelled."""

from __future__ import annotations

import asyncio
import sys

import pytest

from formation.node.tasks import cancel_and_wait, wait_event


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


async def _wake_and_cancel_in_one_turn(wait) -> tuple[asyncio.Task, int]:
    """A loop like the reconciler's, woken by an op in the same turn as its part stops it:
    returns the task and how many rounds it went after the cancel."""
    wake = asyncio.Event()
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            wake.clear()
            await wait(wake)
            rounds += 1

    task = asyncio.get_running_loop().create_task(loop())
    await asyncio.sleep(0)
    wake.set()
    task.cancel()
    await asyncio.wait([task], timeout=0.5)
    return task, rounds


async def test_a_loop_woken_as_it_is_cancelled_ends() -> None:
    task, rounds = await _wake_and_cancel_in_one_turn(lambda e: wait_event(e, 60))
    assert task.cancelled() and rounds == 0


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12's wait_for keeps the cancel")
async def test_wait_for_loses_that_cancel_on_this_python() -> None:
    """Why wait_event exists: the same loop with asyncio.wait_for goes on after its cancel
    (Python 3.11; 3.12 rewrote wait_for). Should this start failing, wait_for is safe again."""
    task, rounds = await _wake_and_cancel_in_one_turn(lambda e: asyncio.wait_for(e.wait(), 60))
    try:
        assert not task.done() and rounds == 1
    finally:
        await cancel_and_wait(task)


async def test_wait_event_says_whether_the_event_came() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 0.01) is True
    with pytest.raises(asyncio.CancelledError):
        task = asyncio.get_running_loop().create_task(wait_event(asyncio.Event(), 60))
        await asyncio.sleep(0)
        task.cancel()
        await task
