"""Replication between nodes over the node API, every request signed with the node's key.

Two mechanisms, each behind a small interface so the gossip layer (a later issue) can carry the
push instead:
- `DirectPush` (an `OpPusher`): every op applied here that was written locally or pushed to us
  is sent at once to every peer but the one it came from; a bounded memory of sent ids per peer
  keeps a peer from getting one op twice from us.
- `AntiEntropy`: periodically, for each peer: fetch its heads; if all are known, done. Otherwise
  send our version vector (per author, the highest seq we have) and receive, batch by batch and
  in the peer's causal order, exactly the ops above it; forks the vector cannot describe
  (equivocations) and parents buffered ops wait for are then fetched by walking back from the
  wanted ids."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from formation.api import state_models as sm
from formation.api import state_routes as routes
from formation.api.client import ApiError, NodeClient, NodeUnreachable
from formation.identity import NodeIdentity
from formation.node.state import wire
from formation.node.state.op import Op
from formation.node.state.store import StateStore
from formation.node.tasks import wait_event

log = logging.getLogger(__name__)

PUSH_MAX_OPS = 500
PUSH_QUEUE_MAX_OPS = 50_000  # per peer: what waits to be pushed; beyond, anti-entropy sends it
PUSH_QUEUE_MAX_BYTES = 16 * 1024 * 1024  # per peer (a member's ops may be 16 KiB each)
PUSH_MAX_BYTES = 600_000  # packed, the batch stays under the server's 1 MiB body limit
RANGE_LIMIT = 2000
RANGE_MAX_BYTES = 700_000  # keeps a packed batch under the 1 MiB request/response bodies


@dataclass
class Peer:
    address: str
    key: str | None = None
    ok: bool | None = None
    last_sync: datetime | None = None
    error: str = ""
    ops_received: int = 0
    bytes_received: int = 0
    # Replication lag: when this replica last held every head the peer had (the moment its
    # heads were asked for), how many of them were unknown then, and what the last pull got.
    last_in_sync: datetime | None = None
    heads_missing: int = 0
    ops_last_pull: int = 0
    client: NodeClient | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str) -> Peer:
        key, _, address = text.rpartition("@")
        return cls(address=address, key=key or None)

    def state(self) -> sm.PeerSyncState:
        age = (datetime.now(UTC) - self.last_in_sync).total_seconds() \
            if self.last_in_sync else None
        return sm.PeerSyncState(
            address=self.address, ok=self.ok, error=self.error,
            last_sync=self.last_sync.isoformat() if self.last_sync else None,
            ops_received=self.ops_received, bytes_received=self.bytes_received,
            last_in_sync=self.last_in_sync.isoformat() if self.last_in_sync else None,
            in_sync_age_s=round(age, 3) if age is not None else None,
            heads_missing=self.heads_missing, ops_last_pull=self.ops_last_pull)


class OpPusher(Protocol):
    def offer(self, ops: list[Op], origin: str | None) -> None:
        """New ops applied here (origin: the key that pushed them, None when written locally,
        "sync" when fetched by anti-entropy)."""


def _client(peer: Peer, identity: NodeIdentity) -> NodeClient:
    if peer.client is None:
        peer.client = NodeClient.tcp(peer.address, identity, timeout_s=30.0,
                                     node_key=peer.key or None)
    return peer.client


class DirectPush:
    def __init__(self, peers: list[Peer], identity: NodeIdentity) -> None:
        self.peers = peers
        self.identity = identity
        self._queues: dict[str, asyncio.Queue[bytes]] = {}
        self._sent: dict[str, OrderedDict[bytes, None]] = {}
        self.queued_bytes: dict[str, int] = {}  # per peer: the envelopes waiting in its queue
        self.skipped = 0  # ops not queued because a peer's queue was full (anti-entropy's)
        for peer in peers:
            self.add(peer)

    def add(self, peer: Peer) -> None:
        """A peer found after start (a member admitted later); `run(peer)` then serves it."""
        self._queues[peer.address] = asyncio.Queue(PUSH_QUEUE_MAX_OPS)
        self._sent[peer.address] = OrderedDict()
        self.queued_bytes[peer.address] = 0

    def moved(self, old: str, new: str) -> None:
        """A peer's address changed (onto the mesh): its queue and memory go with it."""
        self._queues[new] = self._queues.pop(old)
        self._sent[new] = self._sent.pop(old)
        self.queued_bytes[new] = self.queued_bytes.pop(old)

    def offer(self, ops: list[Op], origin: str | None) -> None:
        if origin == "sync":
            return
        for peer in self.peers:
            if peer.key is not None and peer.key == origin:
                continue
            address = peer.address
            queue, sent = self._queues[address], self._sent[address]
            for op in ops:
                if op.id in sent:
                    continue
                if queue.full() or self.queued_bytes[address] + len(op.raw) > \
                        PUSH_QUEUE_MAX_BYTES:
                    self.skipped += 1  # a slow or absent peer: anti-entropy brings it later
                    continue
                sent[op.id] = None
                if len(sent) > 100_000:
                    sent.popitem(last=False)
                queue.put_nowait(op.raw)
                self.queued_bytes[address] += len(op.raw)

    async def run(self, peer: Peer) -> None:
        queue = self._queues[peer.address]
        while True:
            batch = [await queue.get()]
            size = len(batch[0])
            while not queue.empty() and len(batch) < PUSH_MAX_OPS and size < PUSH_MAX_BYTES:
                batch.append(queue.get_nowait())
                size += len(batch[-1])
            self.queued_bytes[peer.address] -= size
            try:
                await _client(peer, self.identity).call(
                    routes.state_sync_push, sm.OpBatch(ops=wire.pack(batch), count=len(batch)))
            except (ApiError, NodeUnreachable) as exc:
                # The peer catches up by anti-entropy; pushing is best effort.
                log.info("push failed", extra={"fields": {"peer": peer.address, "error": str(exc)}})
            except Exception:
                log.exception("push failed unexpectedly", extra={"fields": {"peer": peer.address}})


class AntiEntropy:
    def __init__(self, store: StateStore, peers: list[Peer], identity: NodeIdentity,
                 interval_s: float) -> None:
        self.store = store
        self.peers = peers
        self.identity = identity
        self.interval_s = interval_s
        self.wake = asyncio.Event()

    async def run(self) -> None:
        while True:
            for peer in self.peers:
                await self.sync_with(peer)
            self.wake.clear()
            await wait_event(self.wake, self.interval_s)

    async def sync_with(self, peer: Peer) -> int:
        """Pulls what `peer` has and we lack. Returns the number of ops received."""
        try:
            received = await self.pull(peer)
        except (ApiError, NodeUnreachable, wire.WireError) as exc:
            if peer.ok is not False or peer.error != str(exc):
                log.info("anti-entropy failed",
                         extra={"fields": {"peer": peer.address, "error": str(exc)}})
            peer.ok, peer.error = False, str(exc)
            return 0
        except Exception as exc:  # a bug or a hostile answer: keep syncing with the others
            log.exception("anti-entropy failed unexpectedly",
                          extra={"fields": {"peer": peer.address}})
            peer.ok, peer.error = False, f"{type(exc).__name__}: {exc}"
            return 0
        peer.ok, peer.error, peer.last_sync = True, "", datetime.now(UTC)
        return received

    async def pull(self, peer: Peer) -> int:
        client = _client(peer, self.identity)
        asked_at = datetime.now(UTC)
        heads = await client.call(routes.state_heads)
        unknown = [h for h in heads.heads if not await self.store.has(bytes.fromhex(h))]
        peer.heads_missing = len(unknown)
        if not unknown and not await self.store.missing():
            peer.last_in_sync, peer.ops_last_pull = asked_at, 0
            return 0
        received = await self._walk(peer, client, heads.heads,
                                    await self._pull_ranges(peer, client))
        peer.ops_last_pull = received
        if all([await self.store.has(bytes.fromhex(h)) for h in heads.heads]):
            peer.last_in_sync = asked_at
        return received

    async def _walk(self, peer: Peer, client: NodeClient, heads: list[str],
                    received: int) -> int:
        """Fetches what the range exchange could not bring: the peer's heads still unknown
        and the parents buffered ops wait for."""
        asked: set[str] = set()
        for _round in range(1000):
            want = [h for h in heads if not await self.store.has(bytes.fromhex(h))]
            want += [m.hex() for m in await self.store.missing()]
            want_set = set(want)
            if not want_set or want_set == asked:
                break  # all there, or the peer cannot help further this time
            asked = want_set
            vv = await self.store.version_vector()
            batch = await client.call(routes.state_sync_walk, sm.WalkRequest(
                want=sorted(want_set)[:512], vv={a.hex(): s for a, s in vv.items()},
                limit=RANGE_LIMIT))
            if batch.count == 0:
                break
            received += (await self._ingest(peer, batch))[0]
        return received

    async def _pull_ranges(self, peer: Peer, client: NodeClient) -> int:
        """Batches above our version vector as a stream: the next batch is requested while
        this one is verified, and verified while the previous one is applied (the answer names
        the vector we will have, and the store applies concurrent ingests in call order)."""
        vv = {a.hex(): s for a, s in (await self.store.version_vector()).items()}

        def fetch(vector: dict[str, int]) -> asyncio.Future[sm.RangeResult]:
            return asyncio.ensure_future(client.call(
                routes.state_sync_range, sm.RangeRequest(vv=vector, limit=RANGE_LIMIT)))

        received = 0
        pending: asyncio.Future[sm.RangeResult] | None = fetch(vv)
        ingesting: deque[asyncio.Future[tuple[int, bool]]] = deque()
        try:
            while pending is not None:
                result = await pending
                pending = fetch(result.next_vv) if result.more else None
                ingesting.append(asyncio.ensure_future(self._ingest(peer, result.batch)))
                if len(ingesting) < 2:
                    continue
                got, progress = await ingesting.popleft()
                received += got
                if not progress:
                    break  # nothing applies (refused or waiting): leave it to the walk
            while ingesting:
                received += (await ingesting.popleft())[0]
        finally:
            unfinished: list[asyncio.Future[Any] | None] = [pending, *ingesting]
            for task in unfinished:
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
        return received

    async def _ingest(self, peer: Peer, batch: sm.OpBatch) -> tuple[int, bool]:
        """Returns (ops accepted, whether anything is now present that was sent)."""
        peer.bytes_received += len(batch.ops)
        raws = wire.unpack(batch.ops)
        peer.ops_received += len(raws)
        verdicts = await self.store.ingest(raws, origin="sync", source=peer.key or peer.address)
        accepted = sum(v.status == "accepted" for v in verdicts)
        return accepted, accepted > 0 or any(v.status == "duplicate" for v in verdicts)


class Replication:
    """The store's link to its peers: direct push plus anti-entropy, owned by the component."""

    def __init__(self, store: StateStore, identity: NodeIdentity, peer_specs: list[str],
                 interval_s: float) -> None:
        self.peers = [Peer.parse(p) for p in peer_specs]
        self.push: OpPusher = DirectPush(self.peers, identity)
        self.anti_entropy = AntiEntropy(store, self.peers, identity, interval_s)
        self._unsubscribe = store.subscribe(self.push.offer)

    def add_peer(self, address: str, key: str) -> list[Coroutine[Any, Any, None]]:
        """Replicates with one more peer (a member of the network found by discovery or the
        join handshake); returns the coroutines to run for it (none if already a peer). A peer
        known by its key at another address is re-pointed there (the mesh address once the
        mesh reaches it); the old connection is closed by the coroutine returned."""
        known = next((p for p in self.peers if p.key == key), None)
        if known is not None and known.address != address \
                and not any(p.address == address for p in self.peers):
            old, client = known.address, known.client
            known.address, known.client = address, None
            if isinstance(self.push, DirectPush):
                self.push.moved(old, address)
            return [client.close()] if client is not None else []
        if any(p.address == address for p in self.peers) or known is not None:
            return []
        peer = Peer(address=address, key=key)
        if isinstance(self.push, DirectPush):
            self.push.add(peer)
        self.peers.append(peer)
        self.anti_entropy.wake.set()
        return [self.push.run(peer)] if isinstance(self.push, DirectPush) else []

    def peer_keys(self) -> set[str]:
        return {p.key for p in self.peers if p.key}

    def tasks(self) -> list[Coroutine[Any, Any, None]]:
        coros: list[Coroutine[Any, Any, None]] = [self.anti_entropy.run()]
        if isinstance(self.push, DirectPush):
            coros += [self.push.run(peer) for peer in self.peers]
        return coros

    async def reconnect(self) -> None:
        """Drops every peer's connection: after an underlay change one made from an address the
        host no longer has would hang until its timeout. The next request connects anew; a
        push in flight fails, and anti-entropy brings the peer what it missed."""
        for peer in self.peers:
            if peer.client is not None:
                await peer.client.close()

    async def close(self) -> None:
        self._unsubscribe()
        for peer in self.peers:
            if peer.client is not None:
                await peer.client.close()
