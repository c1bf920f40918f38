"""Which authority op is in which one's causal past, answered without storing the pasts.

A context (the authority ops in an op's causal past) is a down-set of the authority-op DAG, so
it is named exactly by its maximal elements, its *frontier*: usually one op. Storing every
context whole made N authority ops cost O(N^2) in time, memory and disk. Here the authority ops
are split into chains, each totally ordered by causality (an op continues the chain of a
predecessor that is still that chain's tip, else starts one), and each op keeps a vector clock:
for every chain, the highest position among the ops at or below it. Then `a` is at or below
`b` exactly when clock(b)[chain(a)] >= pos(a), and a down-set is, per chain, a prefix. One
chain while admins write one after another; one more per concurrent branch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Set


class CausalIndex:
    """Chains and vector clocks of the authority ops, added in a causal order."""

    def __init__(self) -> None:
        self.chains: list[list[bytes]] = []
        self.place: dict[bytes, tuple[int, int]] = {}  # op -> (chain, position)
        self.clock: dict[bytes, dict[int, int]] = {}  # op -> chain -> top position at/below

    def add(self, op_id: bytes, preds: frozenset[bytes]) -> None:
        """`preds`: the frontier of the op's causal past (all of them already added)."""
        if op_id in self.place:
            return
        clock = self.merged(preds)
        chain = next((self.place[p][0] for p in sorted(preds)
                      if self.chains[self.place[p][0]][-1] == p), None)
        if chain is None:
            chain = len(self.chains)
            self.chains.append([])
        self.place[op_id] = (chain, len(self.chains[chain]))
        clock[chain] = len(self.chains[chain])
        self.chains[chain].append(op_id)
        self.clock[op_id] = clock

    def merged(self, frontier: Iterable[bytes]) -> dict[int, int]:
        """Per chain, the top position of the down-set of `frontier`."""
        ops = list(frontier)
        if len(ops) == 1:
            return dict(self.clock[ops[0]])
        out: dict[int, int] = {}
        for f in ops:
            for chain, pos in self.clock[f].items():
                if out.get(chain, -1) < pos:
                    out[chain] = pos
        return out

    def below(self, op_id: object, frontier: frozenset[bytes]) -> bool:
        """Whether `op_id` is in the down-set of `frontier` (the frontier included)."""
        found = self.place.get(op_id) if isinstance(op_id, bytes) else None
        if found is None:
            return False
        chain, pos = found
        return any(self.clock[f].get(chain, -1) >= pos for f in frontier)

    def maximal(self, ops: Iterable[bytes]) -> frozenset[bytes]:
        """The frontier of the union of the down-sets of `ops`."""
        candidates = set(ops)
        if len(candidates) <= 1:
            return frozenset(candidates)
        return frozenset(a for a in candidates
                         if not any(a != b and self.below(a, frozenset((b,)))
                                    for b in candidates))

    def size(self, frontier: frozenset[bytes]) -> int:
        return sum(pos + 1 for pos in self.merged(frontier).values())

    def members(self, frontier: frozenset[bytes]) -> Iterator[bytes]:
        for chain, pos in self.merged(frontier).items():
            yield from self.chains[chain][:pos + 1]


class DownSet(Set[bytes]):
    """The authority ops at or below a frontier: a context, or the causal past of an
    authority op (below its predecessors). Membership and size cost O(chains); iterating
    lists the members (only resolving from scratch does that)."""

    __slots__ = ("_index", "_len", "frontier")

    def __init__(self, index: CausalIndex, frontier: frozenset[bytes]) -> None:
        self._index = index
        self.frontier = frontier
        self._len = -1

    def __contains__(self, op_id: object) -> bool:
        return self._index.below(op_id, self.frontier)

    def __len__(self) -> int:
        if self._len < 0:
            self._len = self._index.size(self.frontier)
        return self._len

    def __iter__(self) -> Iterator[bytes]:
        return self._index.members(self.frontier)
