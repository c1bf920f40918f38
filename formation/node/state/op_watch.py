"""A part that follows the replicated state: it re-reads the views it needs whenever ops of the
kinds it cares about are applied, and hands the result on (the edge's routes, whether this node
is an edge, the network CA's files). One loop for all of them, so they behave alike:
  - woken by the store's subscription, and once at start;
  - ops arriving together are coalesced (`coalesce_s`): the views are read once per wake-up;
  - a failed reaction is logged in one line and tried again after `retry_s`, not only when the
    next op of interest comes (which may be never on a quiet network)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from formation.node.state.op import Op
from formation.node.tasks import wait_event

if TYPE_CHECKING:
    from formation.node.state.store import StateStore

log = logging.getLogger(__name__)

RETRY_S = 5.0


class OpWatch:
    def __init__(self, store: StateStore, interested: Callable[[str], bool],
                 react: Callable[[], Awaitable[None]], what: str, coalesce_s: float = 0.0,
                 retry_s: float = RETRY_S) -> None:
        self.store, self.interested, self.react, self.what = store, interested, react, what
        self.coalesce_s, self.retry_s = coalesce_s, retry_s
        self._wake = asyncio.Event()

    def _on_ops(self, ops: list[Op], origin: str | None) -> None:
        if any(self.interested(op.kind) for op in ops):
            self._wake.set()

    async def run(self) -> None:
        unsubscribe = self.store.subscribe(self._on_ops)
        self._wake.set()
        failed = False
        try:
            while True:
                if failed:  # the next op of interest, or the retry, whichever comes first
                    await wait_event(self._wake, self.retry_s)
                else:
                    await self._wake.wait()
                if self.coalesce_s:
                    await asyncio.sleep(self.coalesce_s)
                self._wake.clear()
                failed = not await self._react()
        finally:
            unsubscribe()

    async def _react(self) -> bool:
        try:
            await self.react()
        except Exception as exc:  # what was applied before stays; tried again after retry_s
            log.warning("edge: %s not applied (tried again in %g s)", self.what, self.retry_s,
                        extra={"fields": {"error": str(exc)}})
            return False
        return True
