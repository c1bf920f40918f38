"""Signature and structure checks, the CPU-heavy part of ingest.

Ed25519 verification costs several times more than everything else an op needs, and it needs no
database, so large batches are verified in worker processes (`SignaturePool`) while the replica
decodes and applies on its own thread. Processes, not threads: PyNaCl releases the GIL inside
libsodium, but a verifying thread must take the GIL back after every signature and waits for the
applying thread to let go of it, so threads verified at about a third of their speed while a
batch was being applied."""

from __future__ import annotations

import asyncio
import ctypes
import signal
from concurrent.futures import BrokenExecutor
from typing import TYPE_CHECKING

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError
from nacl.exceptions import ValueError as NaclValueError

from formation.node.state.op import (
    KEY_BYTES,
    SIGNING_CONTEXT,
    Op,
    OpError,
    decode,
    split_envelope,
)

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

Checked = Op | OpError
# Where the author's key sits in a canonical body: after the array head, the version, the
# 16-byte network id (with its head) and the author's own 2-byte head.
AUTHOR_AT = 1 + 1 + 17 + 2
POOL_MIN_OPS = 128  # smaller batches are verified in place: a round trip to a worker costs more


def verify_signature(op: Op) -> bool:
    return _holds(op.signature, op.body, op.author)


def _holds(signature: bytes, body: bytes, author: bytes) -> bool:
    try:
        crypto_sign_open(signature + SIGNING_CONTEXT + body, author)
    except (BadSignatureError, NaclValueError):
        return False
    return True


def bad_signature(op: Op) -> OpError:
    return OpError("bad_signature", f"op {op.id.hex()[:16]}: signature does not verify")


def check_one(raw: bytes) -> Checked:
    try:
        op = decode(raw)
    except OpError as exc:
        return exc
    return op if verify_signature(op) else bad_signature(op)


def check_chunk(raws: list[bytes]) -> list[Checked]:
    return [check_one(raw) for raw in raws]


def decode_chunk(raws: list[bytes]) -> list[Checked]:
    """Structure and limits only; signatures are checked separately (see SignaturePool)."""
    out: list[Checked] = []
    for raw in raws:
        try:
            out.append(decode(raw))
        except OpError as exc:
            out.append(exc)
    return out


def signatures_hold(raws: list[bytes]) -> bytes:
    """In a worker process: one byte per op envelope, 1 when its signature verifies for the
    key at the author's place in the body. The caller decoded these ops already, so the body is
    canonical and that place holds the author (with_signatures checks it again)."""
    out = bytearray(len(raws))
    for i, raw in enumerate(raws):
        body, signature = split_envelope(raw)
        out[i] = _holds(signature, body, body[AUTHOR_AT:AUTHOR_AT + KEY_BYTES])
    return bytes(out)


def _worker_start() -> None:
    """A worker dies with the node (even on SIGKILL) and leaves Ctrl-C to the node."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the worker still ends when the pool's pipe closes


class SignaturePool:
    """Verifies the signatures of decoded ops in `workers` processes, started on first use."""

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def check(self, ops: list[Op]) -> asyncio.Future[bytes]:
        """One byte per op (1: its signature verifies), computed in the workers. Call on the
        event loop (the workers are started from its thread). A pool whose worker died is
        replaced; a batch it held fails with BrokenProcessPool (the store then verifies it
        itself)."""
        items = [op.raw for op in ops]
        size = max(1, -(-len(items) // self.workers))
        pool = self._running()
        try:
            futures = [pool.submit(signatures_hold, items[i:i + size])
                       for i in range(0, len(items), size)]
        except BrokenExecutor:  # BrokenProcessPool, without importing multiprocessing to boot
            self._pool = None
            pool = self._running()
            futures = [pool.submit(signatures_hold, items[i:i + size])
                       for i in range(0, len(items), size)]
        parts = [asyncio.wrap_future(f) for f in futures]

        async def joined() -> bytes:
            try:
                return b"".join(await asyncio.gather(*parts))
            except BrokenExecutor:
                if self._pool is pool:
                    self._pool = None
                raise

        return asyncio.ensure_future(joined())

    def _running(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # multiprocessing is imported with the first large batch, not when the node starts.
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_start)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def with_signatures(checked: list[Checked], holds: bytes) -> list[Checked]:
    """`checked` with every op whose signature failed (`holds`: a byte per op, in order)
    replaced by its refusal."""
    verdicts = iter(holds)
    return [c if not isinstance(c, Op) or (next(verdicts) and _author_at_place(c))
            else bad_signature(c) for c in checked]


def _author_at_place(op: Op) -> bool:
    return op.body[AUTHOR_AT:AUTHOR_AT + KEY_BYTES] == op.author
