"""Which accepted ops are void in the views, given the resolution of every authority op.

Acceptance judges an op by its causal past only (every replica gives the same verdict). Whether
it *takes effect* also depends on ops it did not see: a removal of its author that it is
concurrent with, or a void op its author's authority came from (resolve in authority.py). So
the views skip the effects of void ops, and when a newly accepted authority op changes what is
void for ops already applied, the views are rebuilt from the log (rare: a revoked author's
concurrent ops, or an invite used twice). Grant uses follow the same rule (grant_void.py): a
`grant.revoke` that did not see some applied use of its grant also rebuilds the views.

Concurrency of a plain op with a revocation is decided exactly: an op that arrives after the
revocation was accepted cannot be in its causal past; for ops stored before, a walk back from
the revocation in falling HLC order finds which of the revoked author's ops it saw (HLCs rise
along every causal edge, so the walk stops below the oldest op still in question)."""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING

from formation.node.state import grant_rules, rules, tenant_revocation, tenant_usage
from formation.node.state.accounts import ACCOUNT_KINDS
from formation.node.state.authority import (
    ADMIN,
    AUTHORITY_KINDS,
    Authority,
    Resolution,
    fold_authority,
)
from formation.node.state.grant_void import INSTANCE_REF_KINDS, GrantVoids
from formation.node.state.op import Op

if TYPE_CHECKING:
    from formation.node.state.replica import Replica


class Revocation:
    """The replica's void bookkeeping (one per replica, rebuilt on load)."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self._resolution: tuple[int, Resolution] | None = None
        # (revocation, revoked key) -> the key's ops concurrent with it
        self._concurrent: dict[tuple[bytes, str], set[bytes]] = {}
        self._effective: dict[int, Authority] = {}  # ctx -> authority of its valid ops
        self.grants = GrantVoids(replica.db, replica.batch_ops, tenant_usage.LogAccess(
            lambda _account: (), replica.hlc_of, replica.deps_of, replica.ops_at_seq),
            replica.op_of)

    def resolution(self) -> Resolution:
        """The resolution of every accepted authority op, cached until another is accepted."""
        contexts = self.replica.contexts
        ops = contexts.authority_ops
        if self._resolution is None or self._resolution[0] != len(ops):
            ctx = contexts.every()  # usually a context: the one the latest op saw
            self._resolution = (len(ops), contexts.resolution(ctx) if ctx is not None
                                else contexts.resolve(ops))
            self._effective.clear()
        return self._resolution[1]

    def signature(self) -> tuple[frozenset[bytes], frozenset[bytes]]:
        res = self.resolution()
        revoking = [*res.revocations.values(), *self.account_revocations().values()]
        return res.void, frozenset(r.id for revs in revoking for r in revs)

    def account_revocations(self) -> Mapping[str, tuple[Op, ...]]:
        """Account keys -> the account ops that revoked them (tenant_revocation.py)."""
        return self.resolution().account_revocations

    def is_void(self, op: Op, ctx: int, get_op: Callable[[bytes], Op]) -> bool:
        res = self.resolution()
        if op.kind in AUTHORITY_KINDS:
            return op.id in res.void
        if self.grants.is_void(op):  # a grant use its revocation did not see (grant_void.py)
            return True
        members = self.replica.contexts.by_id[ctx]
        if grant_rules.uses_grant(op):
            if self._granter_revoked(op, members, get_op):
                return True
        elif op.kind in INSTANCE_REF_KINDS and self.account_revocations() \
                and isinstance(instance := op.payload.get("instance"), str):
            create = self.grants.use_create(bytes.fromhex(instance))
            made_in = self.replica.ctx_of(create.id) if create is not None else None
            if create is not None and made_in is not None and self._granter_revoked(
                    create, self.replica.contexts.by_id[made_in], get_op):
                return True  # about an instance a void use created: it never existed
        if any(v in members for v in res.void):  # its author's authority may be void-made
            try:
                rules.check(op, self._effective_authority(ctx, members, res), get_op)
            except rules.Refused:
                return True
        author = op.author.hex()
        for rev in self.account_revocations().get(author, ()):
            if rev.id not in members and op.id in self._concurrent_of(rev, author):
                return True  # a revoked account key's op the revocation did not see
        for rev in res.revocations.get(author, ()):
            if rev.id in members or op.id not in self.concurrent_with(rev):
                continue
            if rev.kind == "node.remove":
                return True
            try:  # a demotion: void what only an admin may sign
                rules.check(op, _demoted(self._effective_authority(ctx, members, res), author),
                            get_op)
            except rules.Refused:
                return True
        return False

    def _granter_revoked(self, use: Op, members: AbstractSet[bytes],
                         get_op: Callable[[bytes], Op]) -> bool:
        """A use is judged as its granter's key's op: it is void, like that key's own ops, when
        a revocation of that key did not see it (and it did not see the revocation)."""
        revs = self.account_revocations()
        if not revs:
            return False
        granter = get_op(bytes.fromhex(use.payload[grant_rules.GRANT])).author.hex()
        return any(rev.id not in members and self.grants.unseen_by(rev, use)
                   for rev in revs.get(granter, ()))

    def note_accepted(self, op: Op, ctx: int) -> None:
        """An op accepted after a revocation was cannot be in its causal past."""
        self.grants.note_accepted(op)
        if not self._concurrent:
            return
        members = self.replica.contexts.by_id[ctx]
        author = op.author.hex()
        for (rev_id, target), found in self._concurrent.items():
            if target == author and rev_id not in members and rev_id != op.id \
                    and rev_id in self.replica.contexts.authority_ops:
                found.add(op.id)

    def _effective_authority(self, ctx: int, members: AbstractSet[bytes],
                             res: Resolution) -> Authority:
        found = self._effective.get(ctx)
        if found is None:
            ops = self.replica.contexts.authority_ops
            found = fold_authority([ops[i] for i in members if i in res.valid])
            self._effective[ctx] = found
        return found

    def concurrent_with(self, rev: Op) -> set[bytes]:
        """The revoked author's stored ops that neither saw `rev` nor were seen by it (for an
        account op: those of every key it revoked)."""
        if rev.kind in ACCOUNT_KINDS:
            keys = tenant_revocation.revoked_keys(rev, self.account_revocations())
            return set().union(*(self._concurrent_of(rev, k) for k in keys),
                               self.grants.uses_unseen_by(rev, keys))
        return self._concurrent_of(rev, rev.payload["node"])

    def _concurrent_of(self, rev: Op, target: str) -> set[bytes]:
        found = self._concurrent.get((rev.id, target))
        if found is None:
            found = self._walk(rev, bytes.fromhex(target))
            self._concurrent[(rev.id, target)] = found
        return found

    def _walk(self, rev: Op, target: bytes) -> set[bytes]:
        r = self.replica
        by_id = r.contexts.by_id
        theirs = r.ops_of(target)  # id -> (seq, hlc, ctx)
        seqs = Counter(seq for seq, _h, _c in theirs.values())
        open_: dict[bytes, tuple[int, tuple[int, int]]] = {}
        concurrent: set[bytes] = set()
        for op_id, (seq, hlc, ctx) in theirs.items():
            if op_id == rev.id or rev.id in by_id[ctx]:
                continue  # the revocation itself, or an op that saw it
            if hlc >= rev.hlc:
                concurrent.add(op_id)  # too late to be in its causal past
            else:
                open_[op_id] = (seq, hlc)
        heap = [(_neg(h), d) for d in rev.deps if (h := r.hlc_of(d)) is not None]
        heapq.heapify(heap)
        seen = {d for _h, d in heap}
        while open_ and heap:
            neg, op_id = heapq.heappop(heap)
            if (-neg[0], -neg[1]) < min(h for _s, h in open_.values()):
                break  # everything left in question is above what the walk can still reach
            if op_id in open_:
                seq, _hlc = open_.pop(op_id)
                for other, (s, _h) in list(open_.items()):
                    if s < seq and seqs[s] == 1:  # its author's one op at that seq: an ancestor
                        del open_[other]
            for dep in r.deps_of(op_id):
                if dep not in seen:
                    seen.add(dep)
                    h = r.hlc_of(dep)
                    if h is not None:
                        heapq.heappush(heap, (_neg(h), dep))
        return concurrent | set(open_)


def _neg(hlc: tuple[int, int]) -> tuple[int, int]:
    return (-hlc[0], -hlc[1])


def _demoted(auth: Authority, key: str) -> Authority:
    demoted = auth.copy()
    if key in demoted.members:
        demoted.members[key] = demoted.members[key] - {ADMIN}
    return demoted
