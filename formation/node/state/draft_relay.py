"""The two halves of relaying an op signed by a key that is not a node's (an account's key, or
a key joining an account by invite): the node drafts the body, the key signs it, the node
ingests it as a peer's op. Shared by the tenant relay (tenant_handlers.py) and account invites
(account_invite_handlers.py), so both refuse the same way: only a body this node drafted for
that key in the last TTL_S (tenant_drafts.py), only this network's, within MAX_SKEW_MS of this
node's clock, at the key's next seq; a retry of a written op is a duplicate, written once."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

import cbor2

from formation.api import account_models as am
from formation.api.errors import BadRequest, Conflict, Forbidden
from formation.node.state.hlc import MAX_SKEW_MS
from formation.node.state.op import Op, OpError, decode
from formation.node.state.tenant_drafts import TTL_S, DraftBook

if TYPE_CHECKING:
    from formation.node.state.store import StateStore


async def issue_draft(store: StateStore, book: DraftBook, key: str, kind: str,
                      payload: dict[str, Any]) -> am.Draft:
    """The body `key` is to sign for `kind`/`payload`, remembered in `book`."""
    try:
        raw = await store.draft(bytes.fromhex(key), kind, payload)
    except OpError as exc:
        raise Conflict(f"draft: {exc}") from None
    book.issued(key, raw)
    _v, network, author, seq, _prev, parents, hlc, kind, got = cbor2.loads(raw)
    return am.Draft(body=base64.b64encode(raw).decode(), network=network.hex(),
                    author=author.hex(), seq=seq, parents=[p.hex() for p in parents],
                    hlc=hlc, kind=kind, payload=got)


def signed_op(body: am.SignedOp) -> tuple[bytes, Op]:
    """The signed op a request carries, decoded (400 when it is not one)."""
    try:
        raw = base64.b64decode(body.op, validate=True)
        return raw, decode(raw)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"op: {exc}") from None


async def ingest_drafted(store: StateStore, book: DraftBook, raw: bytes, op: Op,
                         source: str) -> am.Relayed:
    """Writes `op` if it is a body this node drafted for its author; one line otherwise
    (403 for a refusal of authority or quota, 409 for a stale draft, 400 for the rest)."""
    author = op.author.hex()
    if store.network_id is None or op.network != store.network_id:
        raise BadRequest("op.network: not this node's network")
    if await store.has(op.id):  # a retry of an op already written: the same op, once
        return am.Relayed(id=op.id.hex(), kind=op.kind, status="duplicate")
    _check_time(op, store.replica.clock.wall())
    seq = (await store.version_vector()).get(op.author, 0) + 1
    if op.seq != seq:
        raise Conflict(f"op.seq: {op.seq}, but this key's next op here is {seq} (one op per "
                       "draft): draft it again")
    if not book.take(author, op.body):
        raise Conflict("op: not a body this node drafted for this key in the last "
                       f"{int(TTL_S)} s: draft it here, then sign and relay it")
    [verdict] = await store.ingest([raw], origin=None, source=f"{source}:{author}")
    if verdict.status in ("accepted", "duplicate"):
        return am.Relayed(id=op.id.hex(), kind=op.kind, status=verdict.status)
    if verdict.status == "buffered":
        raise Conflict(f"op: {verdict.message or 'waits for ops this node lacks'}; "
                       "draft it again")
    message = f"{op.kind} refused ({verdict.reason}): {verdict.message}"
    if verdict.reason in ("unauthorized", "quota"):
        raise Forbidden(message)
    raise BadRequest(message)


def _check_time(op: Op, wall_ms: int) -> None:
    off = op.hlc[0] - wall_ms
    if abs(off) > MAX_SKEW_MS:
        where = "ahead of" if off > 0 else "behind"
        raise BadRequest(f"op.hlc: {abs(off)} ms {where} this node's clock, at most "
                         f"{MAX_SKEW_MS} ms either way")
