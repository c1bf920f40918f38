"""The event bus. Parts of the node publish; API streams and in-process subscribers read. A slow
subscriber loses its oldest events rather than slowing the publisher or growing without bound."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

from formation.api.models import Event

_CLOSED = object()


class Subscription:
    def __init__(self, bus: EventBus, topic: str | None, maxsize: int) -> None:
        self._bus = bus
        self.topic = topic
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, item: Any) -> None:
        if item is not _CLOSED and self.topic and item.topic != self.topic:
            return
        while True:
            try:
                self.queue.put_nowait(item)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()
                self.dropped += 1

    async def __aiter__(self) -> AsyncGenerator[Event, None]:
        try:
            while True:
                item = await self.queue.get()
                if item is _CLOSED:
                    return
                yield item
        finally:
            self._bus.unsubscribe(self)


class EventBus:
    def __init__(self, history: int = 1000, subscriber_queue: int = 1000) -> None:
        self._seq = 0
        self._history: deque[Event] = deque(maxlen=history)
        self._subscribers: set[Subscription] = set()
        self._queue_size = subscriber_queue
        self.closed = False

    @property
    def last_seq(self) -> int:
        return self._seq

    def publish(self, topic: str, kind: str, data: dict[str, Any] | None = None) -> Event:
        self._seq += 1
        event = Event(seq=self._seq, time=datetime.now(UTC), topic=topic, kind=kind,
                      data=data or {})
        self._history.append(event)
        for sub in list(self._subscribers):
            sub.offer(event)
        return event

    def subscribe(self, topic: str | None = None, since: int | None = None) -> Subscription:
        """Replays buffered events after `since` first, so a reconnecting client misses nothing
        that is still in the history."""
        sub = Subscription(self, topic, self._queue_size)
        if since is not None:
            for event in self._history:
                if event.seq > since:
                    sub.offer(event)
        if self.closed:
            sub.offer(_CLOSED)
        else:
            self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    def close(self) -> None:
        """Ends every stream, so a shutting-down server is not held open by its listeners."""
        self.closed = True
        for sub in list(self._subscribers):
            sub.offer(_CLOSED)
        self._subscribers.clear()
