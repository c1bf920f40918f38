"""The replica: the acceptance engine over one SQLite file. Synchronous and single-threaded by
design; `StateStore` runs it on a dedicated thread so the event loop never waits on SQLite.

Applying a batch: drop duplicates, hold ops whose dependencies are missing in the bounded buffer,
judge the rest in causal order (network, sequence, causality, authorization), record
equivocations, write ops, heads and view effects, and COMMIT once."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from formation.node.state import (
    contexts_db,
    evidence,
    grant_unapply,
    maintenance,
    rules,
    tenant_usage,
    views,
)
from formation.node.state import db as dbm
from formation.node.state.authority import AUTHORITY_KINDS, Authority
from formation.node.state.buffer import PendingBuffer
from formation.node.state.evidence import OpRow
from formation.node.state.held import HeldBuffer
from formation.node.state.hlc import HORIZON_MS, MAX_SKEW_MS, HybridClock
from formation.node.state.op import (
    MAX_PARENTS,
    NETWORK_BYTES,
    Op,
    OpError,
    build_body,
    decode,
    sign_body,
)
from formation.node.state.revocation import Revocation
from formation.node.state.verify import Checked, check_chunk, check_one

log = logging.getLogger(__name__)


class Verdict(NamedTuple):
    """What became of one op (a tuple: one is made per op, and tuples are cheap to make)."""

    id: bytes | None
    status: str  # accepted | duplicate | buffered | refused
    reason: str = ""
    message: str = ""


class _Info(NamedTuple):
    ctx: int
    author: bytes
    seq: int
    hlc: tuple[int, int]


@dataclass
class BatchResult:
    verdicts: list[Verdict]
    applied: list[Op] = field(default_factory=list)  # in apply order, includes unbuffered ops
    equivocations: list[dict[str, Any]] = field(default_factory=list)  # each announced once


class Replica:
    def __init__(self, path: Path, network: bytes | None = None,
                 buffer: PendingBuffer | None = None,
                 wall_ms: Callable[[], int] | None = None, durable: bool = True) -> None:
        self.path = path
        self.db = dbm.connect(path, durable)
        self.buffer = buffer if buffer is not None else PendingBuffer()  # empty is falsy
        self.clock = HybridClock(wall_ms)
        self.held = HeldBuffer()
        self.configured_network = network
        self.refused: dict[str, int] = {}
        self._recent_refused: OrderedDict[bytes, Verdict] = OrderedDict()
        self._evidence_log = evidence.LogLimiter()
        self._load()

    # loading ------------------------------------------------------------------------------
    def _load(self) -> None:
        db = self.db
        self.network: bytes | None = dbm.get_meta(db, "network") or self.configured_network
        self.genesis: bytes | None = dbm.get_meta(db, "genesis")
        self.heads: set[bytes] = {h for (h,) in db.execute("SELECT id FROM heads")}
        self.vv: dict[bytes, int] = dict(db.execute(
            "SELECT author, MAX(seq) FROM ops GROUP BY author").fetchall())
        self.count = db.execute("SELECT COUNT(*) FROM ops").fetchone()[0]
        self.contexts = contexts_db.load(db)
        self.revocation = Revocation(self)
        self._batch_ops: dict[bytes, Op] = {}
        row = db.execute("SELECT MAX(hlc_ms) FROM ops").fetchone()
        if row[0] is not None:
            top = db.execute("SELECT MAX(hlc_c) FROM ops WHERE hlc_ms=?", (row[0],)).fetchone()
            self.clock.observe((row[0], top[0]))
        self._info: dict[bytes, _Info] = {}  # accepted ops' facts, a cache of the ops table
        self._contexts_written = (0, 0)
        self.equivocation_count = evidence.count(db)

    def close(self) -> None:
        self.db.close()

    # lookups ------------------------------------------------------------------------------
    def _info_of(self, op_id: bytes) -> _Info | None:
        found = self._info.get(op_id)
        if found is not None:
            return found
        row = self.db.execute("SELECT ctx, author, seq, hlc_ms, hlc_c FROM ops WHERE id=?",
                              (op_id,)).fetchone()
        if row is None:
            return None
        found = _Info(row[0], row[1], row[2], (row[3], row[4]))
        self._remember(op_id, found)
        return found

    def _remember(self, op_id: bytes, info: _Info) -> None:
        self._info[op_id] = info

    def has(self, op_id: bytes) -> bool:
        return op_id in self._info or self.db.execute(
            "SELECT 1 FROM ops WHERE id=?", (op_id,)).fetchone() is not None

    def _stored(self, ids: list[bytes]) -> set[bytes]:
        found: set[bytes] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            found.update(row[0] for row in self.db.execute(
                f"SELECT id FROM ops WHERE id IN ({','.join('?' * len(chunk))})", chunk))
        return found

    def ops_of(self, author: bytes) -> dict[bytes, tuple[int, tuple[int, int], int]]:
        """Every accepted op of `author`: id -> (seq, hlc, ctx), including this batch's."""
        found = {row[0]: (row[1], (row[2], row[3]), row[4]) for row in self.db.execute(
            "SELECT id, seq, hlc_ms, hlc_c, ctx FROM ops WHERE author=?", (author,))}
        for op_id, op in self._batch_ops.items():
            if op.author == author and (info := self._info_of(op_id)) is not None:
                found[op_id] = (op.seq, op.hlc, info.ctx)
        return found

    def _ops_at(self, author: bytes, seq: int) -> int:
        """How many ops of `author` with this seq this replica holds (2+: a fork)."""
        stored = {row[0] for row in self.db.execute(
            "SELECT id FROM ops WHERE author=? AND seq=?", (author, seq))}
        stored.update(i for i, o in self._batch_ops.items() if o.author == author and o.seq == seq)
        return len(stored)

    def hlc_of(self, op_id: bytes) -> tuple[int, int] | None:
        info = self._info_of(op_id)
        return info.hlc if info is not None else None

    def deps_of(self, op_id: bytes) -> tuple[bytes, ...]:
        return self._op(op_id).deps

    def ctx_of(self, op_id: bytes) -> int | None:
        """The authority context of an accepted op (its causal past's authority ops)."""
        info = self._info_of(op_id)
        return info.ctx if info is not None else None

    def batch_ops(self) -> dict[bytes, Op]:
        """The ops accepted in the batch being applied (their rows are not written yet)."""
        return self._batch_ops

    def op_of(self, op_id: bytes) -> Op:
        """An accepted op, of this batch or the log (OpError if it is neither)."""
        return self._op(op_id)

    def ops_at_seq(self, author: bytes, seq: int) -> int:
        return self._ops_at(author, seq)

    def _op(self, op_id: bytes) -> Op:
        found = self._batch_ops.get(op_id)
        return found if found is not None else self._stored_op(op_id)

    def _stored_op(self, op_id: bytes) -> Op:
        """An op of the log that the caller knows is there; an OpError if it is not (as
        before, when decoding a missing op's None raised one)."""
        raw = self.get_raw(op_id)
        if raw is None:
            raise OpError("invalid", f"op {op_id.hex()[:16]}: not in this replica's log")
        return decode(raw)

    def get_raw(self, op_id: bytes) -> bytes | None:
        row = self.db.execute("SELECT raw FROM ops WHERE id=?", (op_id,)).fetchone()
        return row[0] if row else None

    def current_authority(self) -> Authority:
        """Roles as of everything accepted (the context of all current heads)."""
        ctxs = [i.ctx for h in self.heads if (i := self._info_of(h)) is not None]
        if not ctxs:
            return Authority()
        return self.contexts.authority(self.contexts.past_context(ctxs))

    # writing local ops ----------------------------------------------------------------------
    def create_network(self, sign: Callable[[bytes], bytes], author: bytes, network: bytes,
                       name: str, cidr: str) -> Op:
        if self.genesis is not None:
            raise OpError("invalid", "this replica already belongs to a network")
        if len(network) != NETWORK_BYTES:
            raise OpError("invalid", "network id: expected 16 bytes")
        self.network = network
        body = build_body(network, author, 1, None, [], self.clock.tick(), "network.genesis",
                          {"name": name, "cidr": cidr})
        return self._append_signed(sign_body(body, sign))

    def append(self, sign: Callable[[bytes], bytes], author: bytes, kind: str,
               payload: dict[str, Any]) -> Op:
        """Signs an op with parents = current heads and applies it; raises OpError if refused."""
        return self._append_signed(sign_body(self.draft(author, kind, payload), sign))

    def draft(self, author: bytes, kind: str, payload: dict[str, Any]) -> bytes:
        """The body `author` signs next: its seq and prev, parents = current heads, a tick of
        this replica's clock. Also what a node hands an account key to sign (a tenant's op)."""
        if self.network is None or self.genesis is None:
            raise OpError("invalid", "this replica belongs to no network yet")
        seq = self.vv.get(author, 0) + 1
        prev = None
        if seq > 1:
            prev = self.db.execute("SELECT id FROM ops WHERE author=? AND seq=? ORDER BY ord",
                                   (author, seq - 1)).fetchone()[0]
        hlc = self.clock.tick()
        parents = self._parents_below(hlc, prev)
        return build_body(self.network, author, seq, prev, parents, hlc, kind, payload)

    def _parents_below(self, hlc: tuple[int, int], prev: bytes | None) -> list[bytes]:
        """The current heads a new op stamped `hlc` can name as parents: those below it. A
        head from further ahead than our clock may go (only in a log written before the clock
        was bounded) is left out rather than dragging the new op's time after it."""
        below = [h for h in sorted(self.heads)
                 if (i := self._info_of(h)) is not None and i.hlc < hlc]
        if prev is not None:
            info = self._info_of(prev)
            if info is not None and info.hlc >= hlc:
                raise OpError("invalid", "this node's own last op is stamped ahead of its "
                              "clock; wait for the wall clock to pass it")
        if below:
            return below[:MAX_PARENTS]
        if prev is None:
            raise OpError("invalid", "every head is stamped ahead of this node's clock")
        return [prev]

    def _append_signed(self, raw: bytes) -> Op:
        checked = check_one(raw)
        if isinstance(checked, OpError):
            raise checked
        result = self.apply([checked])
        verdict = result.verdicts[0]
        if verdict.status != "accepted":
            raise OpError(verdict.reason or "invalid", verdict.message or verdict.status)
        return checked

    # applying ------------------------------------------------------------------------------
    def ingest(self, raws: list[bytes], source: str = "") -> BatchResult:
        """Verifies and applies raw ops; one verdict per input."""
        return self.apply_checked(check_chunk(raws), source)

    def apply_checked(self, checked: list[Checked], source: str = "") -> BatchResult:
        """Applies ops whose structure and signature were checked (verify.py); one verdict
        per input. `source`: who sent them (the orphan buffer bounds each source)."""
        ops = [c for c in checked if isinstance(c, Op)]
        result = self.apply(ops, source)
        by_id = {v.id: v for v in result.verdicts}
        verdicts = []
        for c in checked:
            if isinstance(c, OpError):
                self.count_refused(c.reason, str(c))
                verdicts.append(Verdict(None, "refused", c.reason, str(c)))
            else:
                verdicts.append(by_id[c.id])
        result.verdicts = verdicts
        return result

    def count_refused(self, reason: str, message: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1
        log.warning("op refused", extra={"fields": {"reason": reason, "detail": message}})

    def apply(self, ops: list[Op], source: str = "") -> BatchResult:
        """Applies `ops` (one verdict each, in order) after the held-back ops whose time has
        come (their verdicts are not reported; their effects are, in `applied`)."""
        due = self.held.due(self.clock.wall()) if len(self.held) else []
        result = BatchResult([])
        self._source = source
        try:
            self.db.execute("BEGIN IMMEDIATE")
            if due:
                self._apply(due, result)
                result.verdicts.clear()
            self._apply(ops, result)
            # contexts interned outside an accepted op (current_authority) are stored too
            self._contexts_written = contexts_db.write_new(self.db, self.contexts,
                                                           self._contexts_written)
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            self.contexts.rollback()
            self._contexts_written = (0, 0)
            self._load()
            for op in due:  # still due: judged with the next batch
                self.held.add(op, 0)
            raise
        self.contexts.committed()
        self._contexts_written = (0, 0)
        return result

    def _apply(self, ops: list[Op], result: BatchResult) -> None:
        if len(self._info) >= 200_000:  # bounded memory: start over, the table has it all
            self._info.clear()  # (only between batches: ops of this batch are not flushed yet)
        batch: set[bytes] = set()
        batch_ops: dict[bytes, Op] = {}
        self._batch_ops = batch_ops
        before = self.revocation.signature()
        self._applied_void: dict[bytes, bool] = {}  # this batch's authority ops: skipped?
        self._batch_hlc = (0, 0)
        rows: list[OpRow] = []
        registers: views.Registers = {}
        seen: set[bytes] = set()
        stored = self._stored([op.id for op in ops])
        for op in ops:
            if op.id in self.buffer:
                result.verdicts.append(Verdict(op.id, "buffered", "missing_parents"))
                continue
            if op.id in self.held:
                result.verdicts.append(Verdict(op.id, "buffered", "future"))
                continue
            if op.id in seen or op.id in batch or op.id in stored:
                result.verdicts.append(Verdict(op.id, "duplicate"))
                continue
            seen.add(op.id)
            if op.id in self._recent_refused:
                result.verdicts.append(self._recent_refused[op.id])
                continue
            verdict = self._judge(op, batch, batch_ops, rows, registers, result)
            result.verdicts.append(verdict)
            if self.buffer:  # ops waiting for this one are judged now (after it, in order)
                self._unbuffer(op, verdict, batch, batch_ops, rows, registers, result)
        self._flush(rows, registers)
        missed = self.revocation.grants.take_missed()  # uses a revocation did not see
        if self._applied_void and self._voids_changed(before):
            self._rebuild_views()
        elif missed and not grant_unapply.unapply(self.db, missed, self._effects):
            self._rebuild_views()
        self._batch_ops = {}
        self.clock.observe(self._batch_hlc)

    def _unbuffer(self, op: Op, verdict: Verdict, batch: set[bytes], batch_ops: dict[bytes, Op],
                  rows: list[OpRow], registers: views.Registers, result: BatchResult) -> None:
        """Judges the buffered ops that `op`'s verdict decides, and theirs in turn."""
        queue = [(op, verdict)]
        while queue:
            current, decided = queue.pop()
            if decided.status == "accepted":
                for ready in self.buffer.resolved(current.id):
                    queue.append((ready, self._judge(ready, batch, batch_ops, rows, registers,
                                                     result)))
            elif decided.status == "refused":
                self.buffer.discard_refused(current.id)

    def _within_ceiling(self, op: Op) -> bool:
        """False when `op` is from too far in the future: then it is held, not judged."""
        ceiling = self.clock.ceiling()
        if op.hlc[0] <= ceiling:
            return True
        if op.hlc[0] <= HORIZON_MS:
            if self._may_hold(op):
                # judged when the ceiling reaches it (not from a second clock read, which a
                # millisecond tick between the two made one later)
                self.held.add(op, op.hlc[0] - MAX_SKEW_MS)
            else:  # not kept (no verdict either): fetched again later, if it ever comes due
                self.held.dropped += 1
        return False

    def _may_hold(self, op: Op) -> bool:
        """Only a member's op, or the use of an invite this replica holds, may take room in
        the held buffer: a throwaway key cannot fill it."""
        if self.current_authority().is_member(op.author.hex()):
            return True
        invite = op.payload.get("invite") if op.kind == "invite.consume" else None
        return rules.is_key(invite) and self.has(bytes.fromhex(invite))

    def _judge(self, op: Op, batch: set[bytes], batch_ops: dict[bytes, Op], rows: list[OpRow],
               registers: views.Registers, result: BatchResult) -> Verdict:
        if op.hlc[0] > HORIZON_MS:
            return self._refuse(op, "future", f"hlc: {op.hlc[0]} ms is past the horizon "
                                f"{HORIZON_MS} (year 3000); no correct clock is there")
        if not self._within_ceiling(op):
            return Verdict(op.id, "buffered", "future",
                           f"stamped {op.hlc[0] - self.clock.wall()} ms ahead of this node's "
                           "clock; held until its time comes")
        try:
            refs = rules.refs(op) if op.kind in rules.REF_FIELDS else ()
        except rules.Refused as exc:
            return self._refuse(op, exc.reason, str(exc))
        except Exception as exc:  # a payload no rule foresaw: refuse this op, not the batch
            return self._unforeseen(op, exc)
        deps = op.deps
        known = self._info
        infos = [known.get(d) or self._info_of(d) for d in deps]
        present = [i for i in infos if i is not None]
        if len(present) < len(infos) or refs:
            missing = {d for d, i in zip(deps, infos, strict=True) if i is None}
            missing.update(r for r in refs if self._info_of(r) is None)
            if missing:
                self.buffer.add(op, missing, self._source)
                return Verdict(op.id, "buffered", "missing_parents",
                               f"waiting for {len(missing)} op(s)")
        try:
            ctx = self._check(op, present, batch_ops)
        except rules.Refused as exc:
            return self._refuse(op, exc.reason, str(exc))
        except Exception as exc:
            return self._unforeseen(op, exc)
        self._accept(op, deps, ctx, batch, batch_ops, rows, registers, result)
        return Verdict(op.id, "accepted")

    def _refuse(self, op: Op, reason: str, message: str) -> Verdict:
        self.count_refused(reason, f"op {op.id.hex()[:16]} ({op.kind}): {message}")
        verdict = Verdict(op.id, "refused", reason, message)
        self._recent_refused[op.id] = verdict
        if len(self._recent_refused) > 10_000:
            self._recent_refused.popitem(last=False)
        return verdict

    def _unforeseen(self, op: Op, exc: Exception) -> Verdict:
        """The checks raised something other than a refusal: the same op raises the same on
        every replica running this code, so refusing it keeps verdicts equal. A failing disk
        is no verdict on the op: that goes up (the batch is rolled back)."""
        if dbm.environmental(exc):
            raise exc
        return self._refuse(op, "invalid", f"payload: cannot be checked ({type(exc).__name__})")

    def _check(self, op: Op, infos: list[_Info], batch_ops: dict[bytes, Op]) -> int:
        """Network, sequence, causality and authorization; returns the op's context."""
        if op.kind == "network.genesis":
            if self.genesis is not None and op.id != self.genesis:
                raise rules.Refused("wrong_network", "a second genesis: this replica's network "
                                    "has one already")
            if self.network is not None and op.network != self.network:
                raise rules.Refused("wrong_network", "genesis of another network")
            rules.check(op, Authority(), lambda _i: op)
            return self.contexts.own_context(None, op)
        if self.network is None or op.network != self.network:
            raise rules.Refused("wrong_network", "op of another network")
        if not op.parents:
            raise rules.Refused("causality", "an op other than genesis needs parents")
        for info in infos:
            if op.hlc <= info.hlc:
                raise rules.Refused("causality", "hlc: not above a parent's")
        if op.prev is not None:
            prev = self._info_of(op.prev)  # known: prev is among the deps
            if prev is None or prev.author != op.author or prev.seq != op.seq - 1:
                raise rules.Refused("causality", "prev: not the author's op with seq - 1")
        past = self.contexts.past_context([i.ctx for i in infos])
        authority = self.contexts.authority(past)
        if authority.genesis is None:
            raise rules.Refused("causality", "no genesis in the op's causal past")
        rules.check(op, authority, lambda i: batch_ops.get(i) or self._stored_op(i))
        tenant_usage.check(op, authority, tenant_usage.LogAccess(
            lambda account: tenant_usage.stored_instance_ops(self.db, batch_ops, account),
            self.hlc_of, self.deps_of, self._ops_at))
        return self.contexts.own_context(past, op)

    def _accept(self, op: Op, deps: tuple[bytes, ...], ctx: int, batch: set[bytes],
                batch_ops: dict[bytes, Op], rows: list[OpRow], registers: views.Registers,
                result: BatchResult) -> None:
        if op.kind == "network.genesis":
            self.genesis = op.id
            self.network = op.network
            dbm.set_meta(self.db, "genesis", op.id)
            dbm.set_meta(self.db, "network", op.network)
        self._contexts_written = contexts_db.write_new(self.db, self.contexts,
                                                       self._contexts_written)
        op_id, author, seq, hlc = op.id, op.author, op.seq, op.hlc
        top = self.vv.get(author, 0)
        if seq <= top:
            self._note_equivocation(op, rows, registers, result)
        else:
            self.vv[author] = seq
        batch.add(op_id)
        self._info[op_id] = _Info(ctx, author, seq, hlc)
        batch_ops[op_id] = op
        self.revocation.note_accepted(op, ctx)
        rows.append((op_id, author, seq, hlc[0], hlc[1], op.kind, ctx, op.raw))
        if len(rows) >= 4096:
            self._flush(rows, registers)
        heads = self.heads
        heads.difference_update(deps)
        heads.add(op_id)
        if hlc > self._batch_hlc:
            self._batch_hlc = hlc
        self.count += 1
        tenant_usage.index(self.db, op)
        self._effects(op, registers)
        result.applied.append(op)

    def _note_equivocation(self, op: Op, rows: list[OpRow], registers: views.Registers,
                           result: BatchResult) -> None:
        found = evidence.record(self.db, op, rows, self._evidence_log)  # a twin may be in rows
        self.equivocation_count += 1
        if found is not None:
            result.equivocations.append(found)

    def _effects(self, op: Op, registers: views.Registers) -> None:
        """Registers are merged in memory within a batch (one write per field), the rest go to
        SQLite directly."""
        if self._is_void(op):
            return
        direct: list[views.Effect] = []
        order = op.order_key
        for effect in views.effects(op):
            if effect[0] == "roles":
                direct += self._roles_effects(op, effect[1])
            elif effect[0] == "account_keys":
                account = self.revocation.resolution().authority.accounts.by_name.get(effect[1])
                direct += [] if account is None else [
                    ("set", "accounts", effect[1], "keys", list(account.keys))]
            elif effect[0] in ("lww", "fww"):
                slot = effect[:4]
                held = registers.get(slot)
                newer = held is None or (order > held[0] if effect[0] == "lww" else order < held[0])
                if newer:
                    registers[slot] = (order, effect[4], op)
            else:
                direct.append(effect)
        if direct:
            views.apply_effects(self.db, op, direct)

    def _roles_effects(self, op: Op, node: str) -> list[views.Effect]:
        """The roles of `node`, and of every other node that used the same invite, as the
        fold of all accepted authority ops gives them (an admission may void another)."""
        nodes = {node}
        if op.kind == "invite.consume":
            invite = op.payload["invite"]
            nodes.update(o.payload["node"] for o in self.contexts.authority_ops.values()
                         if o.kind == "invite.consume" and o.payload["invite"] == invite)
        everything = self.revocation.resolution().authority
        return [("set", "nodes", n, "roles", sorted(everything.members.get(n, ())))
                for n in sorted(nodes)]

    def _is_void(self, op: Op) -> bool:
        """True when `op` was accepted but takes no effect (revocation.py)."""
        info = self._info_of(op.id)
        if info is None:
            return False
        void = self.revocation.is_void(op, info.ctx, self._op)
        if op.kind in AUTHORITY_KINDS and hasattr(self, "_applied_void"):
            self._applied_void[op.id] = void
        return void

    def _voids_changed(self, before: tuple[frozenset[bytes], frozenset[bytes]]) -> bool:
        """Whether this batch's authority ops changed what is void for ops applied before
        them (then the views are rebuilt): an op voided or restored, or a revocation decided
        or undone while its revoked author has ops concurrent with it."""
        void, decided = self.revocation.signature()
        old_void, old_decided = before
        batch = set(self._applied_void)
        if void - batch != old_void - batch:
            return True
        if any((i in void) != skipped for i, skipped in self._applied_void.items()):
            return True
        ops = self.contexts.authority_ops
        return any(self.revocation.concurrent_with(ops[i]) for i in decided ^ old_decided
                   if i in ops)

    def _rebuild_views(self) -> None:
        """Every view from the log again, within the batch's transaction."""
        views.clear(self.db)
        registers: views.Registers = {}
        for (raw,) in self.db.execute("SELECT raw FROM ops ORDER BY ord"):
            self._effects(decode(raw), registers)
        for slot, (_order, value, op) in registers.items():
            views.apply_effects(self.db, op, [(*slot, value)])

    def _flush(self, rows: list[OpRow], registers: views.Registers) -> None:
        if rows:
            self.db.executemany(
                "INSERT INTO ops (id, author, seq, hlc_ms, hlc_c, kind, ctx, raw) "
                "VALUES (?,?,?,?,?,?,?,?)", rows)
            rows.clear()
        for slot, (_order, value, op) in registers.items():
            views.apply_effects(self.db, op, [(*slot, value)])
        registers.clear()
        self.db.execute("DELETE FROM heads")
        self.db.executemany("INSERT INTO heads VALUES (?)", [(h,) for h in self.heads])

    # reading ------------------------------------------------------------------------------
    def view(self, collection: str) -> list[dict[str, Any]]:
        return views.read(self.db, collection)

    def instance_history(self, instance: str) -> list[dict[str, Any]]:
        return views.instance_history(self.db, instance)

    def equivocations(self) -> list[dict[str, Any]]:
        return evidence.listing(self.db)

    def log_page(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        return self.db.execute("SELECT ord, raw FROM ops WHERE ord > ? ORDER BY ord LIMIT ?",
                               (after, limit)).fetchall()

    # sync ---------------------------------------------------------------------------------
    def ops_after(self, vv: dict[bytes, int], limit: int,
                  max_bytes: int) -> tuple[list[bytes], bool, dict[bytes, int]]:
        """Ops whose (author, seq) is above `vv`, in this replica's accept order (so parents come
        before children), at most `limit` ops / `max_bytes`. Returns (ops, more, the vector the
        asker will have after them), so the asker can request the next batch at once."""
        candidates: list[tuple[int, bytes, int, bytes]] = []
        for author, top in self.vv.items():
            have = vv.get(author, 0)
            if top > have:
                candidates += self.db.execute(
                    "SELECT ord, author, seq, raw FROM ops WHERE author=? AND seq>? "
                    "ORDER BY seq LIMIT ?", (author, have, limit + 1)).fetchall()
        candidates.sort()
        out: list[bytes] = []
        size, after = 0, dict(vv)
        for _ord, author, seq, raw in candidates:
            if len(out) >= limit or (out and size + len(raw) > max_bytes):
                break
            out.append(raw)
            size += len(raw)
            if seq > after.get(author, 0):
                after[author] = seq
        return out, len(out) < len(candidates), after

    def walk_back(self, want: list[bytes], vv: dict[bytes, int], limit: int,
                  max_bytes: int) -> list[bytes]:
        """The wanted ops and, breadth first, their ancestors that the asker's version vector
        does not cover: the fallback for forks (equivocations) the vector cannot describe."""
        out: list[bytes] = []
        size, seen = 0, set(want)
        queue = list(want)
        while queue and len(out) < limit and size < max_bytes:
            op_id = queue.pop(0)
            raw = self.get_raw(op_id)
            if raw is None:
                continue
            out.append(raw)
            size += len(raw)
            for dep in decode(raw).deps:
                if dep in seen:
                    continue
                seen.add(dep)
                info = self._info_of(dep)
                if info is not None and info.seq > vv.get(info.author, 0):
                    queue.append(dep)
        return out

    # addresses ----------------------------------------------------------------------------
    def address_needed(self, author: bytes) -> bool:
        """True when `author` is a member without a mesh address it holds."""
        key = author.hex()
        if not self.current_authority().is_member(key):
            return False
        holders, _lost = views.address_table(self.db)
        return key not in holders.values()

    def free_address(self) -> str | None:
        """The lowest host address of the network's CIDR that no claim names."""
        cidr = self.current_authority().cidr
        if cidr is None:
            return None
        taken = views.claimed_ips(self.db)
        for ip in cidr.hosts():
            if str(ip) not in taken:
                return str(ip)
        return None

    # maintenance --------------------------------------------------------------------------
    def replay_effects(self, op: Op, registers: views.Registers) -> None:
        """One logged op's effects on the views again, the same fold as when it was accepted
        (maintenance.rebuild); register writes gather in `registers` until written."""
        self._effects(op, registers)

    def rebuild(self) -> dict[str, Any]:
        return maintenance.rebuild(self)

    def verify(self) -> list[str]:
        return maintenance.verify(self)
