"""StateStore: the asynchronous face of the replica. SQLite work runs on one dedicated thread,
signature checks on a small pool, so the event loop never blocks; large ingests are pipelined
(the next chunk is verified while the previous one is applied). Subscribers hear about every
applied op, in order, on the event loop (gossip and reconcilers react there)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from concurrent.futures import BrokenExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, TypeVarTuple

from nacl.signing import SigningKey

from formation.identity import NodeIdentity
from formation.node.state import evidence
from formation.node.state.authority import Authority
from formation.node.state.buffer import PendingBuffer
from formation.node.state.db import environmental
from formation.node.state.op import Op, OpError, decode
from formation.node.state.replica import BatchResult, Replica, Verdict
from formation.node.state.rules import invite_proof_message
from formation.node.state.verify import (
    POOL_MIN_OPS,
    Checked,
    SignaturePool,
    check_chunk,
    decode_chunk,
    signatures_hold,
    with_signatures,
)

log = logging.getLogger(__name__)

CHUNK = 2000
PIPELINE_DEPTH = 2  # chunks whose signatures are being verified while one is applied
Listener = Callable[[list[Op], "str | None"], None]
Evidence = dict[str, Any]  # as evidence.record returns it
T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class StateStore:
    VERIFY_WORKERS = min(2, os.cpu_count() or 1)  # processes verifying large batches

    def __init__(self, replica: Replica, identity: NodeIdentity) -> None:
        self.replica = replica
        self.identity = identity
        self._db = ThreadPoolExecutor(1, thread_name_prefix="state-db")
        self._signatures = SignaturePool(self.VERIFY_WORKERS)
        self._listeners: list[Listener] = []
        self._refused_listeners: list[Callable[[str, int], None]] = []
        self._equivocation_listeners: list[Callable[[Evidence], None]] = []
        self._last_turn: asyncio.Future[None] | None = None  # see ingest
        self.members: frozenset[str] = frozenset()
        self.admins: frozenset[str] = frozenset()
        # keys of accounts (tenants): a view of the persistent fold, not a copy per write
        self.account_keys: AbstractSet[str] = frozenset()

    @classmethod
    async def open(cls, path: Path, identity: NodeIdentity, network: bytes | None = None,
                   buffer: PendingBuffer | None = None) -> StateStore:
        replica = await asyncio.to_thread(Replica, path, network, buffer)
        store = cls(replica, identity)
        await store._run(store._refresh_members)
        return store

    async def close(self) -> None:
        await self._run(self.replica.close)
        self._db.shutdown(wait=True)
        await asyncio.to_thread(self._signatures.close)

    async def _run(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    # subscriptions -------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """`listener(ops, origin)` is called on the loop after every batch that applied ops."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def on_refused(self, listener: Callable[[str, int], None]) -> None:
        """`listener(reason, count)` after every batch that refused ops (metrics)."""
        self._refused_listeners.append(listener)

    def on_equivocation(self, listener: Callable[[Evidence], None]) -> None:
        """`listener(evidence)` once for every (author, seq) found forked, evidence as in
        status(): {"author": hex, "seq": n, "ops": [hex, hex], "forks": 2}. Later forks of
        the same seq are only counted (see evidence.py)."""
        self._equivocation_listeners.append(listener)

    def _notify(self, result: BatchResult, origin: str | None, refused: dict[str, int]) -> None:
        for reason, count in refused.items():
            for on_refused in self._refused_listeners:
                on_refused(reason, count)
        for found in result.equivocations:
            for on_evidence in self._equivocation_listeners:
                on_evidence(found)
        if not result.applied:
            return
        for listener in list(self._listeners):
            try:
                listener(result.applied, origin)
            except Exception:
                log.exception("state listener failed")

    # writing --------------------------------------------------------------------------------
    async def create_network(self, name: str, cidr: str, network_id: bytes | None = None) -> Op:
        """Founds a network: the genesis op, signed by this node, which becomes its first admin."""
        network_id = network_id or self.replica.configured_network or os.urandom(16)
        ident = self.identity
        return await self._write(lambda: self.replica.create_network(
            ident.sign, ident.public_key, network_id, name, cidr))

    async def append(self, kind: str, payload: dict[str, Any]) -> Op:
        """Signs `kind`/`payload` with this node's key, parents = current heads, applies and
        persists it (COMMIT done when this returns), and hands it to subscribers."""
        ident = self.identity
        return await self._write(lambda: self.replica.append(ident.sign, ident.public_key,
                                                             kind, payload))

    async def draft(self, author: bytes, kind: str, payload: dict[str, Any]) -> bytes:
        """The op body an account key signs next (tenant_handlers.py); raises OpError."""
        return await self._run(self.replica.draft, author, kind, payload)

    async def authority(self) -> Authority:
        """Who holds which role, and the accounts, as of everything accepted."""
        return await self._run(self.replica.current_authority)

    async def create_invite(self, expires_ms: int, roles: tuple[str, ...] = ("member",),
                            token_seed: bytes | None = None) -> tuple[Op, bytes]:
        """An admin's invite: returns the invite op and the token's secret seed (32 bytes; a
        random one unless given), to hand to the joining node out of band. The invite can be
        consumed once."""
        token = SigningKey(token_seed) if token_seed is not None else SigningKey.generate()
        op = await self.append("invite.create", {
            "token_key": bytes(token.verify_key).hex(), "expires_ms": expires_ms,
            "roles": list(roles)})
        return op, bytes(token)

    async def consume_invite(self, invite_id: bytes, token_seed: bytes) -> Op:
        """The joining node's side: once this replica holds the invite op (synced from a
        member), admit this node with the token. Refused if used, expired or forged, or if
        the op is no invite for this token's key."""
        token_key = bytes(SigningKey(token_seed).verify_key).hex()

        def read_invite() -> dict[str, Any]:
            raw = self.replica.get_raw(invite_id)
            if raw is None:
                raise OpError("invalid", "invite: this replica does not have the invite op yet")
            op = decode(raw)
            if op.kind != "invite.create" or op.payload.get("token_key") != token_key:
                raise OpError("invalid", "invite: that op is no invite for this token")
            return op.payload

        payload = await self._run(read_invite)
        me = self.identity.public_key_hex
        network = self.replica.network or b""
        proof = SigningKey(token_seed).sign(
            invite_proof_message(network, invite_id.hex(), me)).signature
        return await self.append("invite.consume", {
            "invite": invite_id.hex(), "node": me, "roles": payload["roles"],
            "proof": proof.hex()})

    async def _write(self, make: Callable[[], Op]) -> Op:
        def run() -> tuple[Op | OpError, dict[str, int]]:
            before = dict(self.replica.refused)
            try:
                op = make()
            except OpError as exc:
                return exc, _diff(before, self.replica.refused)
            self._refresh_members()
            return op, _diff(before, self.replica.refused)

        op, refused = await self._run(run)
        if isinstance(op, OpError):
            self._notify(BatchResult([]), None, refused)
            raise op
        self._notify(BatchResult([Verdict(op.id, "accepted")], [op]), None, refused)
        return op

    async def ingest(self, raws: list[bytes], origin: str | None = None,
                     source: str | None = None) -> list[Verdict]:
        """Verifies, buffers and applies ops from elsewhere, one transaction per chunk of CHUNK
        ops. A large batch is pipelined: while the replica's thread applies one chunk and
        decodes the next, worker processes verify the signatures of the chunks in between.

        Concurrent calls decode and verify at once but apply in the order they were made, so
        a caller may start ingesting the next batch of a stream before this one is applied
        (anti-entropy does) and its ops still find their parents. `source` names the sender
        for the orphan buffer's per-source bound (default: `origin`)."""
        source = source if source is not None else (origin or "")
        loop = asyncio.get_running_loop()
        my_turn, self._last_turn = self._last_turn, loop.create_future()
        done = self._last_turn
        pending: deque[tuple[list[Checked], asyncio.Future[bytes]]] = deque()
        try:
            if len(raws) < POOL_MIN_OPS:
                checked = await self._run(check_chunk, raws)
                await _turn(my_turn)
                return await self._apply_verified(checked, None, origin, source)
            verdicts: list[Verdict] = []
            for i in range(0, len(raws), CHUNK):
                decoded = await self._run(decode_chunk, raws[i:i + CHUNK])
                pending.append((decoded, self._signatures.check(
                    [c for c in decoded if isinstance(c, Op)])))
                if len(pending) > PIPELINE_DEPTH:
                    await _turn(my_turn)
                    verdicts += await self._apply_verified(*pending.popleft(), origin, source)
            await _turn(my_turn)
            while pending:
                verdicts += await self._apply_verified(*pending.popleft(), origin, source)
            return verdicts
        finally:
            for _decoded, holds in pending:
                holds.cancel()
            # the next call's turn comes when this one's has come and it is done
            if my_turn is None:
                done.set_result(None)
            else:
                def release(_turn: asyncio.Future[None]) -> None:
                    if not done.done():
                        done.set_result(None)

                my_turn.add_done_callback(release)

    async def _apply_verified(self, decoded: list[Checked], holds: asyncio.Future[bytes] | None,
                              origin: str | None, source: str = "") -> list[Verdict]:
        verified = None
        if holds is not None:
            try:
                verified = await holds
            except BrokenExecutor:  # a worker died (the pool is replaced): check here
                log.warning("a signature worker died; verifying this batch in the node")
                verified = await self._run(
                    signatures_hold, [c.raw for c in decoded if isinstance(c, Op)])
        result, refused = await self._run(self._apply, decoded, verified, source)
        self._notify(result, origin, refused)
        return result.verdicts

    def _apply(self, checked: list[Checked], holds: bytes | None,
               source: str = "") -> tuple[BatchResult, dict[str, int]]:
        """On the replica's thread: `holds`, when given, says which signatures verified."""
        if holds is not None:
            checked = with_signatures(checked, holds)
        before = dict(self.replica.refused)
        try:
            result = self.replica.apply_checked(checked, source)
        except Exception as exc:
            if environmental(exc):
                raise  # the disk, not an op: the sender retries later
            log.exception("a batch failed to apply; applying its ops one at a time")
            result = self._apply_each(checked, source)
        if result.applied:
            self._refresh_members()
        return result, _diff(before, self.replica.refused)

    def _apply_each(self, checked: list[Checked], source: str) -> BatchResult:
        """After a batch raised (and was rolled back): each op in its own transaction, so the
        op that raises is refused alone and the others of the batch still apply."""
        result = BatchResult([])
        for one in checked:
            try:
                part = self.replica.apply_checked([one], source)
            except Exception as exc:
                if environmental(exc):
                    raise
                message = f"cannot be applied ({type(exc).__name__})"
                self.replica.count_refused("invalid", message)
                op_id = one.id if isinstance(one, Op) else None
                part = BatchResult([Verdict(op_id, "refused", "invalid", message)])
            result.verdicts += part.verdicts
            result.applied += part.applied
            result.equivocations += part.equivocations
        return result

    def _refresh_members(self) -> None:
        authority = self.replica.current_authority()
        self.members = frozenset(authority.members)
        self.admins = frozenset(k for k in authority.members if authority.is_admin(k))
        self.account_keys = authority.accounts.by_key.keys()

    async def ensure_address(self) -> Op | None:
        """Claims a mesh address when this node is a member without one, e.g. because a
        concurrent claim of the same address won (the loser re-allocates)."""
        ident = self.identity

        def claim() -> Op | None:
            if not self.replica.address_needed(ident.public_key):
                return None
            ip = self.replica.free_address()
            if ip is None:
                log.warning("no free mesh address left in the network's CIDR")
                return None
            return self.replica.append(ident.sign, ident.public_key, "address.claim", {"ip": ip})

        op = await self._run(claim)
        if op is not None:
            self._notify(BatchResult([Verdict(op.id, "accepted")], [op]), None, {})
        return op

    # reading --------------------------------------------------------------------------------
    def is_member_key(self, key_hex: str) -> bool:
        """For the API's signature check: members of the network may sign requests."""
        return key_hex in self.members

    @property
    def network_id(self) -> bytes | None:
        return self.replica.network

    async def view(self, collection: str) -> list[dict[str, Any]]:
        return await self._run(self.replica.view, collection)

    async def instance_history(self, instance_hex: str) -> list[dict[str, Any]]:
        """The instance's observed statuses, oldest first: [{"time_ms", "node", "observed"}],
        at most views.HISTORY_KEPT (the newest)."""
        return await self._run(self.replica.instance_history, instance_hex)

    async def heads(self) -> list[bytes]:
        return await self._run(lambda: sorted(self.replica.heads))

    async def get(self, op_id: bytes) -> bytes | None:
        return await self._run(self.replica.get_raw, op_id)

    async def has(self, op_id: bytes) -> bool:
        return await self._run(self.replica.has, op_id)

    async def log(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        return await self._run(self.replica.log_page, after, limit)

    async def version_vector(self) -> dict[bytes, int]:
        return await self._run(lambda: dict(self.replica.vv))

    async def ops_after(self, vv: dict[bytes, int], limit: int,
                        max_bytes: int) -> tuple[list[bytes], bool, dict[bytes, int]]:
        return await self._run(self.replica.ops_after, vv, limit, max_bytes)

    async def walk_back(self, want: list[bytes], vv: dict[bytes, int], limit: int,
                        max_bytes: int) -> list[bytes]:
        return await self._run(self.replica.walk_back, want, vv, limit, max_bytes)

    async def missing(self) -> list[bytes]:
        """Dependencies buffered ops wait for: what anti-entropy should fetch."""
        return await self._run(lambda: sorted(self.replica.buffer.missing()))

    async def status(self) -> dict[str, Any]:
        def collect() -> dict[str, Any]:
            r = self.replica
            return {
                "network": r.network.hex() if r.network else None,
                "genesis": r.genesis.hex() if r.genesis else None,
                "ops": r.count, "heads": sorted(h.hex() for h in r.heads),
                "authors": len(r.vv), "buffered": len(r.buffer),
                "buffer_bytes": r.buffer.bytes, "buffer_dropped": r.buffer.dropped,
                "held_future": len(r.held), "held_future_dropped": r.held.dropped,
                "refused": dict(r.refused), "equivocations": r.equivocations(),
                "equivocators": evidence.authors(r.db),
            }
        return await self._run(collect)

    async def release_held(self) -> list[Verdict]:
        """Judges the held-back future ops whose time has come (apply does that first)."""
        if not len(self.replica.held):
            return []
        return await self._apply_verified([], None, None)

    def next_held_due_ms(self) -> int | None:
        """Wall time (ms) when the earliest held-back op may be judged, if any."""
        return self.replica.held.next_due()

    async def verify(self) -> list[str]:
        return await self._run(self.replica.verify)

    async def rebuild(self) -> dict[str, Any]:
        return await self._run(self.replica.rebuild)


async def _turn(turn: asyncio.Future[None] | None) -> None:
    """Waits for an earlier ingest to be applied (shielded: cancelling the wait must not
    cancel the earlier call's completion)."""
    if turn is not None:
        await asyncio.shield(turn)


def _diff(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
