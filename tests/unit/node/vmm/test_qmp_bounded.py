"""A QMP call that QEMU never answers, and whose cleanup never ends once cancelled, must not
hang the node: `_within` gives up after its time plus a short cleanup (asyncio.wait_for in 3.11
waits for the cancelled call without end, which hung a test for 240 s)."""

from __future__ import annotations

import asyncio
import time

import pytest

from formation.node.vmm import qemu


async def _stubborn(release: asyncio.Event) -> str:
    """Swallows its cancellation and goes on waiting, as a cleanup that waits on a peer."""
    while True:
        try:
            await release.wait()
            return "late"
        except asyncio.CancelledError:
            continue


async def test_a_call_that_ignores_cancellation_times_out_all_the_same() -> None:
    release = asyncio.Event()
    began = time.monotonic()
    with pytest.raises(TimeoutError, match=r"no answer within 0\.2 s"):
        await qemu._within(_stubborn(release), 0.2)
    assert time.monotonic() - began < 0.2 + qemu.CLEANUP_S + 0.5
    release.set()  # the call left behind ends later; nothing is logged as unretrieved
    await asyncio.sleep(0.05)


async def test_an_answer_in_time_is_returned() -> None:
    async def answer() -> int:
        await asyncio.sleep(0.01)
        return 7

    assert await qemu._within(answer(), 1.0) == 7
