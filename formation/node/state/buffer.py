"""Ops waiting for parents. Bounded in count and in the memory it really holds, in all and per
source (the peer that sent them) and per author: beyond a bound the oldest are dropped
(anti-entropy fetches them again later), so a flood of orphans cannot exhaust memory, and one
peer or one author cannot push out what the others sent.

An entry keeps the op's envelope bytes, not the decoded op (a decoded op with its payload was
about thirteen times its envelope in memory), and is decoded again when released. Its cost is
the envelope plus a measured overhead per entry and per missing dependency (the index entries
that find it again); `tests/unit/node/state/test_buffer.py` checks with tracemalloc that the
accounted bytes cover what a full buffer allocates."""

from __future__ import annotations

from collections import OrderedDict

from formation.node.state.op import ID_BYTES, Op, decode

# Measured on CPython 3.11 (see the test): the entry object, its id and author keys, its slot
# in the order and the per-source and per-author orders, and per missing dependency its share
# of the id blob plus the waiting index's key and slot; then raised by 15% so that the process's
# RSS, which also pays for the allocator's slack, stays within the bound (bench/state.py's
# orphan_rss_ratio).
ENTRY_OVERHEAD = 800
DEP_OVERHEAD = 210
SHARE = 0.25  # of the byte and count bounds, the most one source or one author may hold


def entry_cost(raw_bytes: int, missing: int) -> int:
    """The memory an entry holds, as accounted: what the bounds are checked against."""
    return raw_bytes + ENTRY_OVERHEAD + missing * DEP_OVERHEAD


class _Entry:
    __slots__ = ("author", "cost", "deps", "raw", "remaining", "source")

    def __init__(self, raw: bytes, deps: bytes, source: str, author: bytes) -> None:
        self.raw = raw
        self.deps = deps  # the missing dependencies' ids, concatenated
        self.remaining = len(deps) // ID_BYTES
        self.source = source
        self.author = author
        self.cost = entry_cost(len(raw), self.remaining)


class _Shares:
    """Per key (a source or an author): its entries, oldest first, and their cost."""

    def __init__(self) -> None:
        self.order: dict[object, OrderedDict[bytes, None]] = {}
        self.cost: dict[object, int] = {}

    def add(self, key: object, op_id: bytes, cost: int) -> None:
        self.order.setdefault(key, OrderedDict())[op_id] = None
        self.cost[key] = self.cost.get(key, 0) + cost

    def remove(self, key: object, op_id: bytes, cost: int) -> None:
        entries = self.order[key]
        del entries[op_id]
        if entries:
            self.cost[key] -= cost
        else:
            del self.order[key], self.cost[key]

    def over(self, key: object, max_ops: int, max_bytes: int) -> bytes | None:
        """The oldest entry of `key` when it holds more than its share, else None."""
        entries = self.order.get(key)
        if entries and (len(entries) > max_ops or self.cost[key] > max_bytes):
            return next(iter(entries))
        return None


class PendingBuffer:
    def __init__(self, max_ops: int = 20_000, max_bytes: int = 64 * 1024 * 1024,
                 share: float = SHARE) -> None:
        self.max_ops = max_ops
        self.max_bytes = max_bytes
        self.share_ops = max(1, int(max_ops * share))
        self.share_bytes = int(max_bytes * share)
        self._ops: OrderedDict[bytes, _Entry] = OrderedDict()
        # missing dep -> the id of the one op waiting on it, or a set of them
        self._waiting: dict[bytes, bytes | set[bytes]] = {}
        self._sources = _Shares()
        self._authors = _Shares()
        self.bytes = 0  # accounted: envelopes plus the measured overhead (see entry_cost)
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._ops)

    def __contains__(self, op_id: bytes) -> bool:
        return op_id in self._ops

    def missing(self) -> set[bytes]:
        """Ids some buffered op waits for and that are not buffered themselves."""
        return {dep for dep in self._waiting if dep not in self._ops}

    def add(self, op: Op, missing: set[bytes], source: str = "") -> None:
        """Holds `op` until every id in `missing` is accepted. `source`: who sent it (a peer's
        key), for the per-source bound."""
        if op.id in self._ops or not missing:
            return
        entry = _Entry(op.raw, b"".join(sorted(missing)), source, op.author)
        self._ops[op.id] = entry
        self.bytes += entry.cost
        self._sources.add(source, op.id, entry.cost)
        self._authors.add(op.author, op.id, entry.cost)
        for dep in missing:
            waiters = self._waiting.get(dep)
            if waiters is None:
                self._waiting[dep] = op.id
            elif isinstance(waiters, set):
                waiters.add(op.id)
            else:
                self._waiting[dep] = {waiters, op.id}
        self._enforce(source, op.author)

    def _enforce(self, source: str, author: bytes) -> None:
        while (oldest := self._sources.over(source, self.share_ops, self.share_bytes)):
            self._drop(oldest)
        while (oldest := self._authors.over(author, self.share_ops, self.share_bytes)):
            self._drop(oldest)
        while len(self._ops) > self.max_ops or self.bytes > self.max_bytes:
            self._drop(next(iter(self._ops)))

    def _forget(self, op_id: bytes) -> _Entry:
        """Removes the entry from the order and the shares (not from the waiting index)."""
        entry = self._ops.pop(op_id)
        self.bytes -= entry.cost
        self._sources.remove(entry.source, op_id, entry.cost)
        self._authors.remove(entry.author, op_id, entry.cost)
        return entry

    def _drop(self, op_id: bytes) -> None:
        entry = self._forget(op_id)
        self.dropped += 1
        deps = entry.deps
        for i in range(0, len(deps), ID_BYTES):
            dep = deps[i:i + ID_BYTES]
            waiters = self._waiting.get(dep)
            if waiters is None:
                continue  # resolved already
            if isinstance(waiters, set):
                waiters.discard(op_id)
                if len(waiters) == 1:
                    self._waiting[dep] = next(iter(waiters))
            elif waiters == op_id:
                del self._waiting[dep]

    def resolved(self, dep: bytes) -> list[Op]:
        """`dep` was accepted: returns the ops that now have all their dependencies."""
        waiters = self._waiting.pop(dep, None)
        if waiters is None:
            return []
        ready = []
        for op_id in (waiters if isinstance(waiters, set) else (waiters,)):
            entry = self._ops.get(op_id)
            if entry is None:
                continue
            entry.remaining -= 1
            if entry.remaining == 0:
                self._forget(op_id)
                ready.append(decode(entry.raw))  # checked when it came: decodes again
        return ready

    def discard_refused(self, dep: bytes) -> int:
        """`dep` was refused: ops that wait for it can never be applied; drop them. Returns
        how many were dropped (they are not counted as dropped for space)."""
        waiters = self._waiting.get(dep)
        if waiters is None:
            return 0
        gone = [i for i in (waiters if isinstance(waiters, set) else (waiters,))
                if i in self._ops]
        for op_id in gone:
            self._drop(op_id)
            self.dropped -= 1
        self._waiting.pop(dep, None)
        return len(gone)
