"""Gossip: signed envelopes on topics, pushed to a few peers per hop, deduplicated by id, relayed
until their hop budget is spent. Parts of the node use it in-process:

    unsubscribe = gossip.subscribe("state", callback)   # callback(envelope), sync or async
    envelope, targets = await gossip.publish("state", {"op": ...})

A node does not deliver its own messages to its own subscribers."""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from formation.api.p2p_models import Envelope, GossipAck, GossipStatus
from formation.config.settings import GossipSettings
from formation.identity import NodeIdentity
from formation.node.p2p.envelope import Rejected, make_envelope, origin_id, verify_envelope
from formation.node.p2p.seen import SeenIds
from formation.node.p2p.sender import PeerSender
from formation.node.tasks import cancel_and_wait

log = logging.getLogger(__name__)

ALL = 0  # fanout value: every known peer
Callback = Callable[[Envelope], Awaitable[None] | None]


@dataclass(frozen=True)
class PeerTarget:
    node_id: str
    address: str
    alive: bool = True


class InboxFull(Exception):
    """The node has more received envelopes waiting than it may hold: the sender must wait."""


class Gossip:
    def __init__(self, identity: NodeIdentity, settings: GossipSettings,
                 is_known: Callable[[str], bool], peers: Callable[[], list[PeerTarget]],
                 on_delivered: Callable[[Envelope], None] | None = None) -> None:
        self.identity = identity
        self.settings = settings
        self.is_known = is_known
        self.peers = peers
        self.on_delivered = on_delivered
        self.seen = SeenIds(window_s=2 * settings.max_age_s)
        self.delivered = self.duplicates = self.rejected = self.busy_refusals = 0
        self._inbox: asyncio.Queue[tuple[Envelope, str | None]] = asyncio.Queue(settings.inbox)
        self._subscribers: dict[str, list[Callback]] = {}
        self._senders: dict[str, PeerSender] = {}
        self._worker: asyncio.Task | None = None
        self._closing: set[asyncio.Task] = set()

    # in-process API -----------------------------------------------------------------------
    def subscribe(self, topic: str, callback: Callback) -> Callable[[], None]:
        self._subscribers.setdefault(topic, []).append(callback)
        return lambda: self._subscribers.get(topic, []).remove(callback)

    async def publish(self, topic: str, payload: dict[str, Any], *, fanout: int | None = None,
                      hops: int | None = None) -> tuple[Envelope, int]:
        """By default a small network gets a direct push to every peer (one hop, N-1 sends per
        message); a large one a push to `fanout` peers that relay for `max_hops` hops."""
        s = self.settings
        if fanout is None:
            small = len(self.peers()) <= s.direct_max
            fanout = ALL if small else s.fanout
            hops = (0 if small else s.max_hops) if hops is None else hops
        hops = s.max_hops if hops is None else hops
        envelope = make_envelope(self.identity, topic, payload, hops)
        self.seen.add(envelope.id)
        targets = self._choose(fanout, set())
        for target in targets:
            self._sender(target).offer(envelope)
        return envelope, len(targets)

    # the network side -------------------------------------------------------------------------
    def accept_batch(self, envelopes: list[Envelope], sender_id: str | None) -> GossipAck:
        """Called by the API handler. Refuses the whole batch when it does not fit the inbox."""
        fresh = [e for e in envelopes if e.id not in self.seen]
        if self._inbox.qsize() + len(fresh) > self._inbox.maxsize:
            self.busy_refusals += 1
            raise InboxFull(f"gossip inbox full ({self._inbox.qsize()} waiting)")
        for envelope in fresh:
            self._inbox.put_nowait((envelope, sender_id))
        self.duplicates += len(envelopes) - len(fresh)
        return GossipAck(queued=len(fresh), duplicates=len(envelopes) - len(fresh))

    async def handle(self, envelope: Envelope, sender_id: str | None) -> bool:
        """Verify, dedupe, deliver, relay. Returns whether it was new and valid."""
        try:
            verify_envelope(envelope, self.is_known, self.settings.max_age_s)
        except Rejected as exc:
            self.rejected += 1
            log.debug("gossip envelope rejected", extra={"fields": {"reason": str(exc)}})
            return False
        if not self.seen.add(envelope.id):
            self.duplicates += 1
            return False
        self.delivered += 1
        for callback in list(self._subscribers.get(envelope.topic, [])):
            try:
                result = callback(envelope)
                if inspect.isawaitable(result):
                    await result
            except Exception as exc:
                log.error("gossip subscriber failed", exc_info=exc,
                          extra={"fields": {"topic": envelope.topic}})
        if self.on_delivered is not None:
            self.on_delivered(envelope)
        if envelope.hops > 0:
            relay = envelope.model_copy(update={"hops": envelope.hops - 1})
            skip = {origin_id(envelope)} | ({sender_id} if sender_id else set())
            for target in self._choose(self.settings.fanout, skip):
                self._sender(target).offer(relay)
        return True

    # peers ------------------------------------------------------------------------------------
    def _choose(self, fanout: int, skip: set[str]) -> list[PeerTarget]:
        """Random peers, the living first: a dead peer only gets what the living cannot take."""
        candidates = [p for p in self.peers() if p.node_id not in skip]
        if fanout == ALL or len(candidates) <= fanout:
            return candidates
        alive = [p for p in candidates if p.alive]
        others = [p for p in candidates if not p.alive]
        random.shuffle(alive)
        random.shuffle(others)
        return (alive + others)[:fanout]

    def _sender(self, target: PeerTarget) -> PeerSender:
        sender = self._senders.get(target.node_id)
        if sender is not None and sender.address != target.address:
            closing = asyncio.get_running_loop().create_task(sender.close())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
            sender = None
        if sender is None:
            s = self.settings
            sender = PeerSender(target.node_id, target.address, self.identity,
                                capacity=s.peer_queue, batch=s.batch, timeout_s=s.send_timeout_s,
                                max_age_s=s.max_age_s)
            sender.start()
            self._senders[target.node_id] = sender
        return sender

    # lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._work())

    async def _work(self) -> None:
        while True:
            envelope, sender_id = await self._inbox.get()
            await self.handle(envelope, sender_id)

    async def reconnect(self) -> None:
        """Every lane connects anew (after an underlay change; see `PeerSender.reconnect`)."""
        await asyncio.gather(*(s.reconnect() for s in self._senders.values()))

    async def stop(self) -> None:
        await cancel_and_wait(self._worker)
        await asyncio.gather(*(s.close() for s in self._senders.values()), *self._closing)
        self._senders.clear()

    def status(self) -> GossipStatus:
        return GossipStatus(delivered=self.delivered, duplicates=self.duplicates,
                            rejected=self.rejected, busy_refusals=self.busy_refusals,
                            inbox=self._inbox.qsize(),
                            peers=[s.status() for s in self._senders.values()])
