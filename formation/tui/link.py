"""The console's connection to one node. Nothing here waits without a deadline: every request
has a short timeout, the node is polled every few seconds to tell "answering" from "slow",
"hung" or "gone", the event stream is restarted when the node comes back, and a reconnect after
a node restart starts the stream afresh. Free of Textual so it can be tested and reused alone."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel

from formation.api import console_routes, routes
from formation.api.client import ApiError, NodeClient, NodeUnreachable
from formation.api.console_models import HostSample
from formation.api.endpoint import Endpoint, Req, Resp
from formation.api.models import Event, Health, NodeStatus
from formation.errors import FormationError
from formation.tui.link_status import POLL_S, REQUEST_TIMEOUT_S, LinkStatus

RETRY_S = 1.0

StopFn = Callable[[], Awaitable[None]]
StartEmbedded = Callable[[], Awaitable[StopFn]]
ClientFactory = Callable[[str | None], NodeClient]


class NoAnswerInTime(NodeUnreachable):
    """The link stopped waiting for an answer; the node may still be doing what was asked."""


class LinkListener(Protocol):
    def link_changed(self, status: LinkStatus) -> None: ...
    def link_snapshot(self, status: NodeStatus, health: Health) -> None: ...
    def link_samples(self, samples: list[HostSample], replace: bool) -> None: ...
    def link_event(self, event: Event) -> None: ...


class NodeLink:
    def __init__(
        self,
        client_factory: ClientFactory,
        listener: LinkListener,
        address: str | None = None,
        start_embedded: StartEmbedded | None = None,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        poll_s: float = POLL_S,
    ) -> None:
        self.client_factory = client_factory
        self.listener = listener
        self.address = address
        self.start_embedded = start_embedded if address is None else None
        self.timeout_s = request_timeout_s
        self.poll_s = poll_s
        self.client = client_factory(address)
        self.embedded_stop: StopFn | None = None
        self.status = LinkStatus("connecting", "", self.where)
        self.last_seq: int | None = None
        self.instance: datetime | None = None
        self._wake = asyncio.Event()
        self._poller: asyncio.Task | None = None
        self._stream: asyncio.Task | None = None
        self.last_poll_at = 0.0
        self._subscribers: list[asyncio.Queue[Event]] = []

    @property
    def where(self) -> str:
        return self.address or "local"

    # requests ----------------------------------------------------------------------------------
    async def call(self, endpoint: Endpoint[Req, Resp], body: Req | None = None,
                   query: BaseModel | None = None, timeout_s: float | None = None,
                   **params: str) -> Resp:
        """A request that gives up after the link's timeout (or `timeout_s`, for the few that
        are known to take longer, such as joining), with a message a person reads."""
        limit = timeout_s or self.timeout_s
        try:
            async with asyncio.timeout(limit):
                return await self.client.call(endpoint, body, query, **params)
        except TimeoutError:
            raise NoAnswerInTime(
                f"the node at {self.client.where} did not answer within {limit:g} s"
            ) from None

    async def raw_get(self, path: str) -> bytes:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self.client.raw_get(path)
        except TimeoutError:
            raise NodeUnreachable(
                f"the node at {self.client.where} did not answer within {self.timeout_s:g} s"
            ) from None

    @contextlib.contextmanager
    def subscription(self) -> Iterator[asyncio.Queue[Event]]:
        """Every event of the stream from now on, in a queue, until the block ends (for a task
        that waits for a particular event, such as the outcome of a join)."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers.append(queue)
        try:
            yield queue
        finally:
            self._subscribers.remove(queue)

    # lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._poller = asyncio.get_running_loop().create_task(self._poll_forever())

    def refresh(self) -> None:
        """Poll now rather than at the next tick."""
        self._wake.set()

    async def stop(self) -> None:
        for task in (self._poller, self._stream):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._poller = self._stream = None
        await self.client.close()
        if self.embedded_stop is not None:
            stop, self.embedded_stop = self.embedded_stop, None
            await stop()

    async def switch(self, address: str | None) -> None:
        """Attach to another node (None: the local one). An embedded node keeps running."""
        for task in (self._poller, self._stream):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        try:
            client = self.client_factory(address)
        except FormationError as exc:  # e.g. no identity to sign TCP requests with
            self._set(LinkStatus("offline", f"cannot attach: {exc}", address or "local"))
            self.start()
            return
        await self.client.close()
        self.address = address
        self.client = client
        self.last_seq = None
        self.instance = None
        self._set(LinkStatus("connecting", "", self.where))
        self.start()

    # the loops ---------------------------------------------------------------------------------
    def _set(self, status: LinkStatus) -> None:
        if status != self.status:
            self.status = status
            self.listener.link_changed(status)

    async def _poll_forever(self) -> None:
        first = True
        while True:
            await self._poll_once(first)
            first = False
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_s):
                    await self._wake.wait()

    async def _poll_once(self, first: bool) -> None:
        self.last_poll_at = time.monotonic()
        try:
            status, health = await asyncio.gather(
                self.call(routes.node_status), self.call(routes.health))
        except NodeUnreachable as exc:
            if first and self.start_embedded is not None and self.embedded_stop is None \
                    and "did not answer" not in str(exc):
                await self._start_embedded()
                return await self._poll_once(False)
            self._went_offline(str(exc))
            return
        except ApiError as exc:
            self._went_offline(str(exc))
            return
        if status.started_at != self.instance:
            await self._new_instance(status)
        self._set(LinkStatus("online", "", self.where))
        self.listener.link_snapshot(status, health)
        if self._stream is None or self._stream.done():
            self._stream = asyncio.get_running_loop().create_task(self._follow_events())

    async def _start_embedded(self) -> None:
        assert self.start_embedded is not None
        self._set(LinkStatus("connecting", "no node service runs here: starting one inside "
                             "the console", self.where))
        self.embedded_stop = await self.start_embedded()
        self.address = None
        await self.client.close()
        self.client = self.client_factory(None)
        self._set(LinkStatus("connecting", "embedded node started", "embedded"))

    async def _new_instance(self, status: NodeStatus) -> None:
        """First contact, or the node restarted: its event numbers start again. The stream
        replays the node's buffered history (since=0), so nothing published between this
        snapshot and the stream's subscription is lost."""
        self.instance = status.started_at
        self.last_seq = 0
        if self._stream is not None:
            self._stream.cancel()
            self._stream = None
        try:
            samples = await self.call(console_routes.node_metrics)
        except (NodeUnreachable, ApiError):
            return
        self.listener.link_samples(samples.samples, replace=True)

    def _went_offline(self, why: str) -> None:
        if self._stream is not None:
            self._stream.cancel()
            self._stream = None
        self._set(LinkStatus("offline", why, self.where))

    async def _follow_events(self) -> None:
        try:
            async for event in self.client.events(since=self.last_seq):
                self.last_seq = event.seq
                if event.topic == "metrics" and event.kind == "sample":
                    self.listener.link_samples([HostSample.model_validate(event.data)], False)
                self.listener.link_event(event)
                for queue in self._subscribers:
                    queue.put_nowait(event)
                if event.topic in ("node", "capabilities", "settings"):
                    self._wake.set()
        except (NodeUnreachable, ApiError) as exc:
            self._set(LinkStatus("offline", f"event stream lost: {exc}", self.where))
            await asyncio.sleep(RETRY_S)
        self._wake.set()  # the poller decides whether the node is back and restarts the stream
