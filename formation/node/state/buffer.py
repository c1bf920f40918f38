"""Ops waiting for parents. Bounded in count and bytes: beyond the bound the oldest are dropped
(anti-entropy fetches them again later), so a flood of orphans cannot exhaust memory."""

from __future__ import annotations

from collections import OrderedDict

from formation.node.state.op import Op


class PendingBuffer:
    def __init__(self, max_ops: int = 20_000, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_ops = max_ops
        self.max_bytes = max_bytes
        self._ops: OrderedDict[bytes, tuple[Op, set[bytes]]] = OrderedDict()
        self._waiting: dict[bytes, set[bytes]] = {}  # missing dep -> ids of ops waiting on it
        self.bytes = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._ops)

    def __contains__(self, op_id: bytes) -> bool:
        return op_id in self._ops

    def missing(self) -> set[bytes]:
        """Ids some buffered op waits for and that are not buffered themselves."""
        return {dep for dep in self._waiting if dep not in self._ops}

    def add(self, op: Op, missing: set[bytes]) -> None:
        if op.id in self._ops:
            return
        self._ops[op.id] = (op, missing)
        self.bytes += len(op.raw)
        for dep in missing:
            self._waiting.setdefault(dep, set()).add(op.id)
        while len(self._ops) > self.max_ops or self.bytes > self.max_bytes:
            self._drop(next(iter(self._ops)))

    def _drop(self, op_id: bytes) -> Op:
        op, missing = self._ops.pop(op_id)
        self.bytes -= len(op.raw)
        self.dropped += 1
        for dep in missing:
            waiters = self._waiting.get(dep)
            if waiters is not None:
                waiters.discard(op_id)
                if not waiters:
                    del self._waiting[dep]
        return op

    def resolved(self, dep: bytes) -> list[Op]:
        """`dep` was accepted: returns the ops that now have all their dependencies."""
        ready = []
        for op_id in self._waiting.pop(dep, ()):
            entry = self._ops.get(op_id)
            if entry is None:
                continue
            entry[1].discard(dep)
            if not entry[1]:
                del self._ops[op_id]
                self.bytes -= len(entry[0].raw)
                ready.append(entry[0])
        return ready

    def discard_refused(self, dep: bytes) -> list[Op]:
        """`dep` was refused: ops that wait for it can never be applied; drop them."""
        gone = []
        for op_id in list(self._waiting.get(dep, ())):
            if op_id in self._ops:
                gone.append(self._drop(op_id))
                self.dropped -= 1
        self._waiting.pop(dep, None)
        return gone
