"""Ops stamped too far in the future, held back until their time comes.

An op whose HLC wall part is more than MAX_SKEW_MS beyond this node's wall clock is neither
accepted nor refused: refusing would depend on this node's clock (another node, or this one a
minute later, would accept it), and accepting would drag our clock ahead. It waits here and is
judged by the ordinary rules once our wall clock reaches its time minus the skew, so every
correct node reaches the same verdict, only later. Bounded in count, in bytes and per author, so
one hostile member cannot crowd out everyone else; what does not fit is dropped (counted) and
fetched again by anti-entropy later."""

from __future__ import annotations

import heapq
from collections import Counter

from formation.node.state.op import Op


class HeldBuffer:
    def __init__(self, max_ops: int = 2_000, max_bytes: int = 8 * 1024 * 1024,
                 max_per_author: int = 64) -> None:
        self.max_ops = max_ops
        self.max_bytes = max_bytes
        self.max_per_author = max_per_author
        self._ops: dict[bytes, Op] = {}
        self._due: list[tuple[int, bytes]] = []  # (wall ms when it may be judged, op id)
        self._per_author: Counter[bytes] = Counter()
        self.bytes = 0
        self.held = 0  # ever held back
        self.dropped = 0  # did not fit

    def __len__(self) -> int:
        return len(self._ops)

    def __contains__(self, op_id: bytes) -> bool:
        return op_id in self._ops

    def add(self, op: Op, due_ms: int) -> bool:
        """Holds `op` until wall time `due_ms`; False (and counted) when it does not fit."""
        if op.id in self._ops:
            return True
        if (len(self._ops) >= self.max_ops or self.bytes + len(op.raw) > self.max_bytes
                or self._per_author[op.author] >= self.max_per_author):
            self.dropped += 1
            return False
        self._ops[op.id] = op
        self._per_author[op.author] += 1
        self.bytes += len(op.raw)
        self.held += 1
        heapq.heappush(self._due, (due_ms, op.id))
        return True

    def next_due(self) -> int | None:
        return self._due[0][0] if self._due else None

    def due(self, now_ms: int) -> list[Op]:
        """Removes and returns the ops whose time has come, earliest first."""
        out = []
        while self._due and self._due[0][0] <= now_ms:
            _, op_id = heapq.heappop(self._due)
            op = self._ops.pop(op_id, None)
            if op is None:
                continue
            self.bytes -= len(op.raw)
            self._per_author[op.author] -= 1
            if not self._per_author[op.author]:
                del self._per_author[op.author]
            out.append(op)
        return out
