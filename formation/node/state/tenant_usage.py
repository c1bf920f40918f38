"""Quotas: what an account's instances use, as seen from one op's causal past.

An op's verdict may depend only on its causal past (so every replica gives the same one), so
the usage a tenant's `instance.create` or resizing `instance.update` is judged against is the
fold of the account's instance ops *in that op's past*: its instances created and not deleted
there, each with its latest spec there by (HLC, id). Which stored ops are in the past is found
by walking back from the op in falling HLC order (HLCs rise along every causal edge, so the
walk stops below the oldest candidate); ops stored but not in the past (concurrent, or later)
count for nothing, whatever order they arrived in.

Two concurrent creates, each within the quota, both stand (neither saw the other): the check
bounds what any one op may add to what its author could see, not the sum of concurrent ones.

Cost: the candidates are the account's instance ops (the tenant_ops index, written with each
op in its batch's transaction, void or not); an earlier op of the checked op's own author is in
its past by its prev chain; only the others (the account's other keys, admins' deletes) need
the walk, which visits the ops between the op and the oldest of them (bench/tenants.py)."""

from __future__ import annotations

import heapq
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from formation.node.state import grant_revocation, grant_rules
from formation.node.state.accounts import Account
from formation.node.state.authority import Authority
from formation.node.state.op import Op, decode
from formation.node.state.rules import Refused

SPEC_FIGURES = ("vcpus", "memory_mb", "disk_gb")


@dataclass
class LogAccess:
    """What the walk needs from the replica (replica.py passes its own methods)."""

    instance_ops: Callable[[str], Iterable[Op]]  # an account's stored instance ops (at least)
    hlc_of: Callable[[bytes], tuple[int, int] | None]
    deps_of: Callable[[bytes], tuple[bytes, ...]]
    ops_at: Callable[[bytes, int], int] = lambda _author, _seq: 2  # ops held at (author, seq)


def check(op: Op, auth: Authority, log: LogAccess) -> None:
    """Raises the refusal when `op`, signed by an account's key, takes it past a quota; for a
    grantee's op (grant_rules.py): when its grant was revoked in its past, or it takes the
    granting account past a quota."""
    author = op.author.hex()
    if auth.is_member(author):
        return
    if grant_rules.uses_grant(op):
        name = str(op.payload.get("account"))
        revoked = grant_revocation.revoked_problem(
            op, log.instance_ops(grant_revocation.index_key(op.payload["grant"])),
            lambda use, wanted: in_past(use, wanted, log))
        if revoked is not None:
            raise Refused("unauthorized", revoked)
        account = auth.accounts.by_name.get(name)
    else:
        account = auth.accounts.of_key(author)
    if op.kind not in ("instance.create", "instance.update"):
        return
    if account is not None and (problem := quota_problem(op, account, log)) is not None:
        raise Refused("quota", problem)


def quota_problem(op: Op, account: Account, log: LogAccess) -> str | None:
    """None when `op` (by a key of `account`) keeps the account within its quotas, else one
    line naming the figure. Only a figure the op raises is checked: shrinking an instance of an
    account over its quota (the quota lowered later) is allowed."""
    if not account.quotas:
        return None
    if op.kind == "instance.create":
        target = None
    elif op.kind == "instance.update" and "spec" in op.payload:
        target = op.payload["instance"]
    else:
        return None
    before = _live_specs(op, account.name, log)
    if target is not None and target not in before:
        return None  # deleted in its past (or not the account's): the update changes nothing
    after = dict(before)
    after[target or op.id.hex()] = op.payload["spec"]
    used, will = _totals(before), _totals(after)
    for name in ("instances", *SPEC_FIGURES):
        limit = account.quotas.get(name)
        if limit is not None and will[name] > limit and will[name] > used[name]:
            return (f"quota: account {account.name!r} would use {will[name]} {name}, its "
                    f"quota is {limit} (in use: {used[name]})")
    return None


def _totals(specs: dict[str, dict[str, int]]) -> dict[str, int]:
    out = {name: sum(int(s.get(name, 0)) for s in specs.values()) for name in SPEC_FIGURES}
    out["instances"] = len(specs)
    return out


def _live_specs(op: Op, account: str, log: LogAccess) -> dict[str, dict[str, int]]:
    """instance id hex -> its spec, for the account's instances live in `op`'s causal past."""
    creates: dict[str, Op] = {}
    changes: list[Op] = []
    for other in log.instance_ops(account):
        if other.order_key >= op.order_key:
            continue  # not below it: cannot be in its past
        if other.kind == "instance.create" and other.payload.get("account") == account:
            creates[other.id.hex()] = other
        elif other.kind != "instance.create":
            changes.append(other)
    changes = [c for c in changes if c.payload.get("instance") in creates
               and (c.kind == "instance.delete" or "spec" in c.payload)]
    wanted = {c.id: c for c in (*creates.values(), *changes)}
    past = in_past(op, wanted, log)
    specs: dict[str, tuple[tuple[int, int, bytes], dict[str, int]]] = {
        i: (c.order_key, c.payload["spec"]) for i, c in creates.items() if c.id in past}
    deleted: set[str] = set()
    for change in changes:
        if change.id not in past or change.payload["instance"] not in specs:
            continue
        target = change.payload["instance"]
        if change.kind == "instance.delete":
            deleted.add(target)
        elif change.order_key > specs[target][0]:
            specs[target] = (change.order_key, change.payload["spec"])
    return {i: spec for i, (_order, spec) in specs.items() if i not in deleted}


def in_past(op: Op, wanted: dict[bytes, Op], log: LogAccess) -> set[bytes]:
    """Which of `wanted` are in `op`'s causal past. An earlier op of `op`'s own author is, when
    it is the only op this replica holds at its seq: `op`'s prev chain passes that seq through
    an op the replica holds (its past is), so through that one. (With a fork at that seq, and
    for other authors' ops, the walk decides.) The rest: a walk back from its dependencies in
    falling HLC order that stops below the lowest HLC still wanted."""
    found: set[bytes] = set()
    for w, other in list(wanted.items()):
        if other.author == op.author and other.seq < op.seq \
                and log.ops_at(other.author, other.seq) == 1:
            found.add(w)
    left = {w: h for w in wanted if w not in found and (h := log.hlc_of(w)) is not None}
    heap = [(_neg(h), d) for d in op.deps if (h := log.hlc_of(d)) is not None]
    heapq.heapify(heap)
    seen = {d for _h, d in heap}
    while left and heap:
        neg, op_id = heapq.heappop(heap)
        if (-neg[0], -neg[1]) < min(left.values()):
            break
        if op_id in left:
            del left[op_id]
            found.add(op_id)
        for dep in _deps(op_id, log):
            if dep not in seen:
                seen.add(dep)
                h = log.hlc_of(dep)
                if h is not None:
                    heapq.heappush(heap, (_neg(h), dep))
    return found


INSTANCE_KINDS = ("instance.create", "instance.update", "instance.delete")
INDEXED_KINDS = (*INSTANCE_KINDS, "grant.set", "grant.revoke")


_CACHE_MAX = 100_000
_decoded: OrderedDict[bytes, Op] = OrderedDict()  # op id -> op: an id names one op anywhere
_deps_cache: OrderedDict[bytes, tuple[bytes, ...]] = OrderedDict()


def _remember(cache: OrderedDict[bytes, Any], key: bytes, value: Any) -> None:
    cache[key] = value
    if len(cache) > _CACHE_MAX:
        cache.popitem(last=False)


def _deps(op_id: bytes, log: LogAccess) -> tuple[bytes, ...]:
    found = _deps_cache.get(op_id)
    if found is None:
        found = log.deps_of(op_id)
        _remember(_deps_cache, op_id, found)
    return found


SCHEMA = """
CREATE TABLE IF NOT EXISTS tenant_ops (
  account TEXT NOT NULL, instance BLOB NOT NULL, op BLOB NOT NULL,
  PRIMARY KEY (account, op)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tenant_ops_instance ON tenant_ops (instance);
"""


def index(db: sqlite3.Connection, op: Op) -> None:
    """Called for every accepted op, void or not, in its batch's transaction: the instance ops
    of accounts' instances, by account (what the quota check reads)."""
    if op.kind == "instance.create":
        account = op.payload.get("account")
        if isinstance(account, str):
            db.execute("INSERT OR IGNORE INTO tenant_ops VALUES (?,?,?)", (account, op.id, op.id))
    elif op.kind == "grant.set":  # indexed like an instance, under a key of its own (no
        db.execute("INSERT OR IGNORE INTO tenant_ops VALUES (?,?,?)",  # account name has ':'):
                   (grant_revocation.index_key(op.id.hex()), op.id, op.id))  # its revocations
    elif op.kind in ("instance.update", "instance.delete", "grant.revoke"):
        instance = bytes.fromhex(op.payload.get("instance") or op.payload["grant"])
        row = db.execute("SELECT account FROM tenant_ops WHERE instance=? AND op=?",
                         (instance, instance)).fetchone()
        if row is not None:
            db.execute("INSERT OR IGNORE INTO tenant_ops VALUES (?,?,?)", (row[0], instance, op.id))
    if grant_rules.uses_grant(op):  # a grant's uses, for its revocations (grant_void.py)
        grant = op.payload[grant_rules.GRANT]
        db.execute("INSERT OR IGNORE INTO tenant_ops VALUES (?,?,?)",
                   (grant_revocation.uses_key(grant), bytes.fromhex(grant), op.id))


def backfill(db: sqlite3.Connection) -> None:
    """A log written before the index: index what it holds (once; creates before their
    updates, in log order)."""
    if db.execute("SELECT value FROM meta WHERE key='tenant_ops'").fetchone() is not None:
        backfill_uses(db)
        return
    for (raw,) in db.execute("SELECT raw FROM ops WHERE kind IN ('instance.create', "
                             "'instance.update', 'instance.delete') ORDER BY ord").fetchall():
        index(db, decode(raw))
    db.execute("INSERT OR REPLACE INTO meta VALUES ('tenant_ops', x'01')")
    backfill_uses(db)


def backfill_uses(db: sqlite3.Connection) -> None:
    """A log written before grant uses were indexed: index its uses (once)."""
    if db.execute("SELECT value FROM meta WHERE key='grant_uses'").fetchone() is not None:
        return
    for (raw,) in db.execute("SELECT raw FROM ops WHERE kind IN ('instance.create', "
                             "'instance.update', 'instance.delete')").fetchall():
        op = decode(raw)
        if grant_rules.uses_grant(op):
            grant = op.payload[grant_rules.GRANT]
            db.execute("INSERT OR IGNORE INTO tenant_ops VALUES (?,?,?)",
                       (grant_revocation.uses_key(grant), bytes.fromhex(grant), op.id))
    db.execute("INSERT OR REPLACE INTO meta VALUES ('grant_uses', x'01')")


def stored_instance_ops(db: sqlite3.Connection, batch: dict[bytes, Op],
                        account: str) -> Iterable[Op]:
    """The account's instance ops in the log, and every instance op of the batch being applied
    (its rows are not written yet; the caller filters)."""
    for op_id, raw in db.execute("SELECT o.id, o.raw FROM tenant_ops t JOIN ops o ON o.id = t.op"
                                 " WHERE t.account=?", (account,)):
        op = _decoded.get(op_id)
        if op is None:
            op = decode(raw)
            _remember(_decoded, op_id, op)
        yield op
    for op in list(batch.values()):
        if op.kind in INDEXED_KINDS:
            yield op


def _neg(hlc: tuple[int, int]) -> tuple[int, int]:
    return (-hlc[0], -hlc[1])
