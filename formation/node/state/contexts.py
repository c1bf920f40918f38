"""Authority contexts: the set of authority ops in an op's causal past, which the op is judged
against (authority.py). Contexts are interned to small integers (the ops table stores one per
op) and their resolutions cached, because they change only when an authority op is added or
branches with different authority ops merge.

A context is a down-set of the authority-op DAG, named by its frontier (its maximal ops,
causal_index.py), so a new authority op's context costs O(1) to name and store whatever the
number of ops before it. Every replica still judges each op against exactly its causal past:
the frontier determines the set, and resolving reads it through the index."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace

from formation.node.state import tenant_revocation
from formation.node.state.authority import (
    AUTHORITY_KINDS,
    Authority,
    Resolution,
    extend,
    resolve,
)
from formation.node.state.causal_index import CausalIndex, DownSet
from formation.node.state.op import Op

CACHED_RESOLUTIONS = 1024


class ContextCache:
    """Contexts by id, the authority ops with their causal order, and cached resolutions.
    The store persists contexts (contexts_db.py) so that a restart does not refold the log."""

    def __init__(self) -> None:
        self.index = CausalIndex()
        self.frontiers: dict[int, frozenset[bytes]] = {}
        self._top = 0  # the highest context id given
        self.ids: dict[frozenset[bytes], int] = {}
        self.authority_ops: dict[bytes, Op] = {}
        self.preds: dict[bytes, frozenset[bytes]] = {}  # authority op -> its past's frontier
        self.frontier: frozenset[bytes] = frozenset()  # of every authority op held
        self._resolutions: OrderedDict[int, Resolution] = OrderedDict()
        self._extends: dict[int, tuple[int, bytes]] = {}  # ctx -> (its op's past ctx, op)
        self.new_contexts: list[tuple[int, frozenset[bytes]]] = []  # not yet committed
        self.new_authority: list[tuple[bytes, int | None]] = []  # (op, its past ctx)

    @property
    def by_id(self) -> Mapping[int, DownSet]:
        """Context id -> its authority ops (a view: membership by the causal index)."""
        return _Contexts(self)

    @property
    def past_of(self) -> Mapping[bytes, DownSet]:
        """Authority op -> the authority ops in its causal past."""
        return _Pasts(self)

    def load(self, ctx_id: int, frontier: frozenset[bytes]) -> None:
        self.frontiers[ctx_id] = frontier
        self.ids[frontier] = ctx_id
        self._top = max(self._top, ctx_id)

    def intern(self, frontier: frozenset[bytes]) -> int:
        """The id of the context whose maximal ops are `frontier` (which must be maximal)."""
        found = self.ids.get(frontier)
        if found is not None:
            return found
        ctx_id = self._top + 1
        self.load(ctx_id, frontier)
        self.new_contexts.append((ctx_id, frontier))
        return ctx_id

    def past_context(self, dep_contexts: list[int]) -> int:
        """The context an op is judged in: the union of its dependencies' contexts."""
        unique = set(dep_contexts)
        if len(unique) == 1:
            return next(iter(unique))
        return self.intern(self.index.maximal(
            f for c in unique for f in self.frontiers[c]))

    def own_context(self, past: int | None, op: Op) -> int:
        """The context of an accepted op: its past plus itself when it is an authority op."""
        if op.kind not in AUTHORITY_KINDS:
            assert past is not None
            return past
        self.add_authority_op(op, past)
        self.new_authority.append((op.id, past))
        return self.ids[frozenset((op.id,))]

    def add_authority_op(self, op: Op, past: int | None) -> None:
        """Records an authority op whose causal past is context `past` (None: genesis), in a
        causal order (accept order, or the log's order on load), and interns its own context."""
        preds = self.frontiers[past] if past is not None else frozenset()
        self.authority_ops[op.id] = op
        self.preds[op.id] = preds
        self.index.add(op.id, preds)
        # a maximal op below the new one is among its past's maximal ops (it is maximal there)
        self.frontier = (self.frontier - preds) | {op.id}
        ctx = self.intern(frozenset((op.id,)))
        if past is not None:
            self._extends.setdefault(ctx, (past, op.id))

    def every(self) -> int | None:
        """The context holding every authority op, when one is interned (usually: the
        latest authority op's, or a merge of branches some op saw)."""
        return self.ids.get(self.frontier)

    def resolve(self, members: Iterable[bytes]) -> Resolution:
        """Resolves a causally closed set of authority ops from scratch."""
        ids = list(members)
        ops = [self.authority_ops[i] for i in ids]
        past_of = {i: DownSet(self.index, self.preds[i]) for i in ids}
        res = resolve(ops, past_of, self.preds)
        return replace(res, account_revocations=tenant_revocation.account_revocations(
            res, self.authority_ops, past_of))

    def authority(self, ctx_id: int) -> Authority:
        return self.resolution(ctx_id).authority

    def resolution(self, ctx_id: int) -> Resolution:
        """The resolution of a context, extended from its op's past context when that one is
        at hand (see extend), else resolved from scratch; cached (least recently used out)."""
        found = self._resolutions.get(ctx_id)
        if found is not None:
            self._resolutions.move_to_end(ctx_id)
            return found
        step = self._extends.get(ctx_id)
        base = self._resolutions.get(step[0]) if step is not None else None
        if step is not None and base is not None and base.settled:
            op = self.authority_ops[step[1]]
            found = extend(base, op)
            found = replace(found, account_revocations=tenant_revocation.extended(
                base, op, found))
        else:
            found = self.resolve(self.index.members(self.frontiers.get(ctx_id, frozenset())))
        self._resolutions[ctx_id] = found
        if len(self._resolutions) > CACHED_RESOLUTIONS:
            self._resolutions.popitem(last=False)
        return found

    def committed(self) -> None:
        """The batch that made the new contexts is committed: they are no longer new."""
        self.new_contexts.clear()
        self.new_authority.clear()

    def rollback(self) -> None:
        """Forget contexts created by a batch whose transaction failed (the replica reloads
        the authority ops from the log after this)."""
        for ctx_id, frontier in self.new_contexts:
            self.frontiers.pop(ctx_id, None)
            self.ids.pop(frontier, None)
            self._resolutions.pop(ctx_id, None)
            self._extends.pop(ctx_id, None)
        self.committed()


class _Contexts(Mapping[int, DownSet]):
    def __init__(self, cache: ContextCache) -> None:
        self._cache = cache

    def __getitem__(self, ctx_id: int) -> DownSet:
        return DownSet(self._cache.index, self._cache.frontiers[ctx_id])

    def __iter__(self) -> Iterator[int]:
        return iter(self._cache.frontiers)

    def __len__(self) -> int:
        return len(self._cache.frontiers)


class _Pasts(Mapping[bytes, DownSet]):
    def __init__(self, cache: ContextCache) -> None:
        self._cache = cache

    def __getitem__(self, op_id: bytes) -> DownSet:
        return DownSet(self._cache.index, self._cache.preds[op_id])

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._cache.preds)

    def __len__(self) -> int:
        return len(self._cache.preds)
