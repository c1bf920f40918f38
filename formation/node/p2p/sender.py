"""One outbound lane per peer: a bounded queue, a task that sends batches, and backoff. A slow or
dead peer fills only its own lane; when full, its oldest envelopes are dropped (counted), so memory
stays bounded and fresh messages win. A peer answering 503 (its inbox is full) pushes back: the
batch is kept and retried after a pause."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from formation.api import p2p_routes
from formation.api.client import ApiError, NodeClient, NodeUnreachable
from formation.api.p2p_models import Envelope, GossipBatch, PeerQueue
from formation.identity import NodeIdentity
from formation.node.tasks import cancel_and_wait

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 0.1
MAX_BACKOFF_S = 2.0
MAX_BATCH_BYTES = 900 * 1024  # under the server's 1 MiB request body limit


class PeerSender:
    def __init__(self, node_id: str, address: str, identity: NodeIdentity, *, capacity: int,
                 batch: int, timeout_s: float, max_age_s: float) -> None:
        self.node_id = node_id
        self.address = address
        self.capacity = capacity
        self.batch = batch
        self.max_age_s = max_age_s
        self.sent = self.dropped = self.failures = 0
        self.backoff_s = 0.0
        self._queue: deque[Envelope] = deque()
        self._pending: list[Envelope] = []
        self._wake = asyncio.Event()
        self._client = NodeClient.tcp(address, identity, timeout_s=timeout_s, node_id=node_id)
        self._task: asyncio.Task | None = None

    def offer(self, envelope: Envelope) -> None:
        if len(self._queue) >= self.capacity:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(envelope)
        self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._queue) + len(self._pending)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        await self._client.close()

    async def reconnect(self) -> None:
        """Drops the connection (see `Replication.reconnect`); the next send connects anew."""
        await self._client.close()

    def _take_batch(self) -> list[Envelope]:
        """Up to `batch` envelopes and MAX_BATCH_BYTES (always at least one)."""
        taken: list[Envelope] = []
        size = 0
        while self._queue and len(taken) < self.batch:
            cost = _size(self._queue[0])
            if taken and size + cost > MAX_BATCH_BYTES:
                break
            taken.append(self._queue.popleft())
            size += cost
        return taken

    def _fresh(self, envelopes: list[Envelope]) -> list[Envelope]:
        oldest = time.time() - self.max_age_s
        kept = [e for e in envelopes if e.created >= oldest]
        self.dropped += len(envelopes) - len(kept)
        return kept

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if not self._queue:
                    self._wake.clear()
                    await self._wake.wait()
                self._pending = self._take_batch()
            self._pending = self._fresh(self._pending)
            if not self._pending:
                continue
            if await self._send(self._pending):
                self.sent += len(self._pending)
                self._pending = []
                self.backoff_s = 0.0
                continue
            self.failures += 1
            self.backoff_s = min(max(self.backoff_s * 2, FIRST_BACKOFF_S), MAX_BACKOFF_S)
            await asyncio.sleep(self.backoff_s)

    async def _send(self, envelopes: list[Envelope]) -> bool:
        try:
            await self._client.call(p2p_routes.gossip_push, GossipBatch(envelopes=envelopes))
            return True
        except ApiError as exc:
            if exc.status != 503:  # refused for good (e.g. our key is unknown there): drop it
                self.dropped += len(envelopes)
                self._pending = []
                log.debug("gossip refused", extra={"fields": {"peer": self.address,
                                                               "error": str(exc)}})
            return False
        except NodeUnreachable:
            return False

    def status(self) -> PeerQueue:
        return PeerQueue(node_id=self.node_id, address=self.address, queued=self.queued,
                         sent=self.sent, dropped=self.dropped, failures=self.failures,
                         backoff_s=self.backoff_s)


def _size(envelope: Envelope) -> int:
    return len(envelope.model_dump_json()) + 1
