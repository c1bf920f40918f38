"""The loop the edge's feeds share: it reacts at start and after ops of interest, coalesces, and
tries a failed reaction again after retry_s even when no further op comes."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from waiting import until

from formation.node.state.op_watch import OpWatch


class Store:
    """Only what OpWatch uses of the state store: subscribe(callback) -> unsubscribe."""

    def __init__(self) -> None:
        self.callbacks: list = []

    def subscribe(self, callback):
        self.callbacks.append(callback)
        return lambda: self.callbacks.remove(callback)

    def apply(self, *kinds: str) -> None:
        for callback in list(self.callbacks):
            callback([SimpleNamespace(kind=k) for k in kinds], None)


async def test_reacts_at_start_and_to_ops_of_interest_only() -> None:
    store, calls = Store(), []

    async def react() -> None:
        calls.append(1)

    task = asyncio.create_task(OpWatch(store, lambda k: k.startswith("route."), react,
                                       "routes").run())
    await until(lambda: len(calls) == 1)
    store.apply("instance.create")
    await asyncio.sleep(0.05)
    assert len(calls) == 1  # not of interest
    store.apply("route.set", "route.remove")
    await until(lambda: len(calls) == 2)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert store.callbacks == []  # unsubscribed when stopped


async def test_a_failed_reaction_is_tried_again_without_another_op(caplog) -> None:
    store, calls = Store(), []

    async def react() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("caddy's admin socket is not there yet")

    task = asyncio.create_task(OpWatch(store, lambda k: True, react, "capability change",
                                       retry_s=0.05).run())
    await until(lambda: len(calls) == 2, timeout_s=5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert "capability change not applied (tried again in 0.05 s)" in caplog.text
