"""Signature and structure checks, the CPU-heavy part of ingest. They need no database, so they
run in parallel worker threads (libsodium releases the GIL) before the batch is applied."""

from __future__ import annotations

from concurrent.futures import Executor

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError
from nacl.exceptions import ValueError as NaclValueError

from formation.node.state.op import SIGNING_CONTEXT, Op, OpError, decode

Checked = Op | OpError


def verify_signature(op: Op) -> bool:
    try:
        crypto_sign_open(op.signature + SIGNING_CONTEXT + op.body, op.author)
    except (BadSignatureError, NaclValueError):
        return False
    return True


def check_one(raw: bytes) -> Checked:
    try:
        op = decode(raw)
    except OpError as exc:
        return exc
    if not verify_signature(op):
        return OpError("bad_signature", f"op {op.id.hex()[:16]}: signature does not verify")
    return op


def check_chunk(raws: list[bytes]) -> list[Checked]:
    return [check_one(raw) for raw in raws]


def check_all(raws: list[bytes], pool: Executor | None, workers: int = 2) -> list[Checked]:
    """Decodes and verifies `raws`, split over `workers` threads of `pool` for large batches."""
    if pool is None or len(raws) < 256 or workers < 2:
        return check_chunk(raws)
    size = (len(raws) + workers - 1) // workers
    futures = [pool.submit(check_chunk, raws[i:i + size]) for i in range(0, len(raws), size)]
    out: list[Checked] = []
    for future in futures:
        out.extend(future.result())
    return out
