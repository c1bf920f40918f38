"""Which accepted grant uses are void: the same revocation rule as for removed nodes and revoked
account keys (revocation.py, tenant_revocation.py), applied to grants.

A use whose grant's revocation is in its causal past is refused (grant_revocation.py). A use
that did not see the revocation is accepted, as every replica must (its verdict depends on its
past only), but it stands only if the revocation saw it: a use of grant G is *void* when some
accepted `grant.revoke` of G does not hold it in its causal past. Its effects are left out of
the views on every replica that holds the revocation, whatever order the two arrived in (when
the revocation comes after such a use, its effects are taken out of the views:
grant_unapply.py).

Why this also settles backdated uses: a hostile member may give a grantee's use old parents and
an HLC from before the revocation (or before the grant's expiry). Such a use is not in the
revocation's past, so it is void whatever its HLC. What stands of a revoked grant is exactly
what its revocation saw. (An expired grant that nobody revoked has no such seal: revoking it
after its expiry voids any late use that was stamped back before the expiry.)

An instance made by a void create never existed: every later op about it (an update by the
account itself, a node's placement or status report) is void too, so the views hold no record
of it rather than a nameless one.

Cost: nothing while no grant of the use was revoked (a dict lookup). A revocation walks back
from itself to the oldest earlier use of its grant, once (tenant_usage.in_past); uses accepted
after it cannot be in its past and are added without a walk."""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Iterable

from formation.node.state import grant_rules, tenant_usage
from formation.node.state.grant_revocation import index_key, uses_key
from formation.node.state.op import Op, OpError, decode

INSTANCE_REF_KINDS = frozenset({"instance.update", "instance.delete", "instance.place",
                                "instance.status"})
_CREATES_MAX = 50_000


class GrantVoids:
    """One replica's void uses (rebuilt with it: see Revocation)."""

    def __init__(self, db: sqlite3.Connection, batch: Callable[[], dict[bytes, Op]],
                 log: tenant_usage.LogAccess, get_op: Callable[[bytes], Op]) -> None:
        self._db = db
        self._batch = batch  # the ops of the batch being applied (not in the ops table yet)
        self._log = log
        self._get_op = get_op
        self._revokes: dict[str, dict[bytes, Op]] | None = None  # grant hex -> its revocations
        self._concurrent: dict[bytes, set[bytes]] = {}  # revocation -> uses it did not see
        self._known: dict[str, set[bytes]] = {}  # grant hex -> revocations in _concurrent
        self._unseen: dict[tuple[bytes, bytes], bool] = {}  # (key revocation, use) -> unseen?
        self._plain: OrderedDict[bytes, bool] = OrderedDict()  # creates that are no uses
        self._missed: dict[bytes, None] = {}  # applied uses a new revocation did not see

    # what is void ----------------------------------------------------------------------------
    def is_void(self, op: Op) -> bool:
        """Whether `op` (accepted) is a use its grant's revocation did not see, or an op about
        an instance such a use created."""
        revokes = self._all_revokes()
        if not revokes:
            return False
        if grant_rules.uses_grant(op):
            return self._use_void(op, revokes)
        if op.kind in INSTANCE_REF_KINDS:
            instance = op.payload.get("instance")
            return isinstance(instance, str) and self._create_void(bytes.fromhex(instance),
                                                                   revokes)
        return False

    def _use_void(self, op: Op, revokes: dict[str, dict[bytes, Op]]) -> bool:
        return any(op.id in self.concurrent_with(rev)
                   for rev in revokes.get(op.payload[grant_rules.GRANT], {}).values())

    def _create_void(self, create_id: bytes, revokes: dict[str, dict[bytes, Op]]) -> bool:
        create = self.use_create(create_id)
        return create is not None and self._use_void(create, revokes)

    def use_create(self, create_id: bytes) -> Op | None:
        """The instance.create `create_id` when a grantee made it (a use), else None."""
        if create_id in self._plain:
            return None  # not a use: never void by these rules
        try:
            create = self._get_op(create_id)
        except OpError:  # a reference is present before its op is accepted; be safe anyway
            return None
        if create.kind != "instance.create" or not grant_rules.uses_grant(create):
            self._plain[create_id] = True
            if len(self._plain) > _CREATES_MAX:
                self._plain.popitem(last=False)
            return None
        return create

    def unseen_by(self, rev: Op, use: Op) -> bool:
        """Whether the use `use` is not in the causal past of `rev` (a revocation of the key that
        signed its grant: tenant_revocation.py). Cached: both are accepted, the answer is
        fixed."""
        key = (rev.id, use.id)
        found = self._unseen.get(key)
        if found is None:
            found = use.order_key > rev.order_key or \
                use.id not in tenant_usage.in_past(rev, {use.id: use}, self._log)
            self._unseen[key] = found
        return found

    def uses_unseen_by(self, rev: Op, keys: Iterable[str]) -> set[bytes]:
        """The stored uses of the grants signed by `keys` (the keys the account op `rev`
        revoked) that `rev` did not see: they become void, so the views must be rebuilt if any
        was applied. Called once per newly accepted revocation."""
        found: set[bytes] = set()
        for key in keys:
            for grant in self._grants_by(bytes.fromhex(key)):
                found.update(u.id for u in self._uses_of(grant.id.hex())
                             if self.unseen_by(rev, u))
        return found

    def concurrent_with(self, rev: Op) -> set[bytes]:
        """The stored uses of `rev`'s grant that it did not see (none of them saw it: a use
        with the revocation in its past is refused)."""
        found = self._concurrent.get(rev.id)
        if found is None:
            uses = list(self._uses_of(rev.payload["grant"]))
            below = {u.id: u for u in uses if u.order_key < rev.order_key}
            seen = tenant_usage.in_past(rev, below, self._log) if below else set()
            found = {u.id for u in uses} - seen
            self._concurrent[rev.id] = found
            self._known.setdefault(rev.payload["grant"], set()).add(rev.id)
        return found

    # keeping up ------------------------------------------------------------------------------
    def note_accepted(self, op: Op) -> None:
        """Called for every accepted op, after it joined the batch. A use accepted after a
        revocation of its grant was cannot be in its past; a revocation that did not see some
        use already applied means the views must be rebuilt."""
        if grant_rules.uses_grant(op):
            for rev_id in self._known.get(op.payload[grant_rules.GRANT], ()):
                self._concurrent[rev_id].add(op.id)
        elif op.kind == "grant.revoke":
            if self._revokes is not None:
                self._revokes.setdefault(op.payload["grant"], {})[op.id] = op
            self._missed.update(dict.fromkeys(self.concurrent_with(op)))

    def take_missed(self) -> list[Op]:
        """The uses applied before a revocation of this batch that did not see them: their
        effects must leave the views (grant_unapply.py)."""
        missed, self._missed = self._missed, {}
        return [self._get_op(i) for i in missed]

    # reading the log ---------------------------------------------------------------------------
    def _all_revokes(self) -> dict[str, dict[bytes, Op]]:
        """Every accepted revocation by grant, read once (revocations are few)."""
        if self._revokes is None:
            found: dict[str, dict[bytes, Op]] = {}
            rows = self._db.execute(  # the grants' index: a grant's row has op = instance
                "SELECT o.raw FROM tenant_ops t JOIN ops o ON o.id = t.op WHERE t.account >= ?"
                " AND t.account < ? AND t.op != t.instance AND o.kind = 'grant.revoke'",
                (index_key(""), index_key("")[:-1] + ";"))
            ops: Iterable[Op] = [*map(decode, (raw for (raw,) in rows)),
                                 *(o for o in self._batch().values() if o.kind == "grant.revoke")]
            for rev in ops:
                found.setdefault(rev.payload["grant"], {})[rev.id] = rev
            self._revokes = found
        return self._revokes

    def _grants_by(self, author: bytes) -> Iterable[Op]:
        for (raw,) in self._db.execute("SELECT raw FROM ops WHERE author=? AND kind='grant.set'",
                                       (author,)):
            yield decode(raw)
        for op in list(self._batch().values()):
            if op.kind == "grant.set" and op.author == author:
                yield op

    def _uses_of(self, grant: str) -> Iterable[Op]:
        key = uses_key(grant)
        for (raw,) in self._db.execute("SELECT o.raw FROM tenant_ops t JOIN ops o ON o.id = t.op"
                                       " WHERE t.account=?", (key,)):
            yield decode(raw)
        for op in list(self._batch().values()):
            if grant_rules.uses_grant(op) and op.payload[grant_rules.GRANT] == grant:
                yield op

