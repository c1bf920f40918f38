"""The orphan buffer bounds the memory it really holds (measured with tracemalloc against what
it accounts), in all, per source and per author; released ops come back whole."""

from __future__ import annotations

import gc
import os
import tracemalloc
from pathlib import Path

import pytest
from settings_factory import make_settings
from statekit import craft, found, replica

from formation.identity import NodeIdentity
from formation.node.service import NodeService
from formation.node.state import op as opm
from formation.node.state.buffer import PendingBuffer, entry_cost

KEY = NodeIdentity.from_seed(b"\x21" * 32)
OTHER = NodeIdentity.from_seed(b"\x22" * 32)
ADMIN = NodeIdentity.from_seed(b"\x23" * 32)
NET = bytes(16)


def _orphans(count: int, parents: int, who: NodeIdentity = KEY, payload: dict | None = None
             ) -> list[bytes]:
    """Signed ops whose parents (and previous op) nobody has: each waits on parents + 1."""
    out = []
    for i in range(count):
        body = opm.build_body(NET, who.public_key, 5, os.urandom(32),
                              [os.urandom(32) for _ in range(parents)], (10, i), "node.record",
                              {**(payload or {}), "name": f"n{i}"})
        out.append(opm.sign_body(body, who.sign))
    return out


def _held_bytes(raws: list[bytes], buffer: PendingBuffer, sources: int) -> int:
    """What filling `buffer` with `raws` allocates and keeps, as the node does it: each
    envelope arrives as its own bytes object and is decoded, then buffered."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i, raw in enumerate(raws):
            op = opm.decode(bytes(bytearray(raw)))
            buffer.add(op, set(op.deps), f"peer-{i % sources}")
            del op
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("parents, payload, sources", [
    (31, None, 1),  # the most dependencies an op may have: the index's worst case
    (1, None, 7),
    (1, {"resources": {f"k{j}": j for j in range(100)}}, 3),  # a payload that decodes large
])
def test_accounted_bytes_cover_what_a_full_buffer_holds(parents, payload, sources) -> None:
    """On main the buffer counted envelope bytes only and held 9 to 14 times as much."""
    raws = _orphans(1500, parents, payload=payload)
    buffer = PendingBuffer(max_ops=10**6, max_bytes=10**10, share=1.0)
    real = _held_bytes(raws, buffer, sources)
    assert len(buffer) == len(raws)
    assert real <= buffer.bytes, (real, buffer.bytes)
    assert real >= 0.6 * buffer.bytes, (real, buffer.bytes)  # and not wildly over-counted


def test_full_buffer_stays_within_its_byte_bound(short_tmp: Path) -> None:
    bound = 2 * 1024 * 1024
    raws = _orphans(800, 31)
    buffer = PendingBuffer(max_ops=10**6, max_bytes=bound, share=1.0)
    real = _held_bytes(raws, buffer, 1)
    assert buffer.dropped > 0 and buffer.bytes <= bound
    assert real <= bound


def test_one_source_cannot_push_out_the_others() -> None:
    buffer = PendingBuffer(max_ops=1000, max_bytes=400_000)  # a source may hold a quarter
    honest = [opm.decode(r) for r in _orphans(10, 1, OTHER)]
    for op in honest:
        buffer.add(op, set(op.deps), "honest")
    for op in (opm.decode(r) for r in _orphans(600, 1)):
        buffer.add(op, set(op.deps), "flood")
    assert all(op.id in buffer for op in honest)
    flood = len(buffer) - len(honest)
    assert 0 < flood * entry_cost(len(honest[0].raw), 2) <= 100_000 * 1.1
    assert buffer.dropped == 600 - flood


def test_one_author_cannot_fill_it_through_many_sources() -> None:
    buffer = PendingBuffer(max_ops=100, max_bytes=10**9)  # an author may hold 25 ops
    kept = [opm.decode(r) for r in _orphans(5, 1, OTHER)]
    for op in kept:
        buffer.add(op, set(op.deps), "a")
    for i, op in enumerate(opm.decode(r) for r in _orphans(200, 1)):
        buffer.add(op, set(op.deps), f"sybil-{i}")
    assert len(buffer) == 5 + 25
    assert all(op.id in buffer for op in kept)


def test_released_ops_are_whole_and_the_index_empties() -> None:
    parent, sibling = os.urandom(32), os.urandom(32)
    body = opm.build_body(NET, KEY.public_key, 2, parent, [parent, sibling], (10, 1),
                          "node.record", {"name": "waiting"})
    op = opm.decode(opm.sign_body(body, KEY.sign))
    buffer = PendingBuffer()
    buffer.add(op, {parent, sibling}, "peer")
    assert buffer.missing() == {parent, sibling}
    assert buffer.resolved(parent) == []
    [back] = buffer.resolved(sibling)
    assert (back.id, back.raw, back.payload) == (op.id, op.raw, op.payload)
    assert len(buffer) == 0 and buffer.bytes == 0 and buffer.missing() == set()


def test_a_flooding_pusher_leaves_the_replicas_other_orphans(short_tmp: Path) -> None:
    """Through the replica: the per-source bound applies to what each sender pushed."""
    src = found(short_tmp, ADMIN, [KEY, OTHER])
    r = replica(short_tmp, "r")
    r.buffer = PendingBuffer(max_ops=400, max_bytes=10**9)
    waiting = [craft(OTHER, src, "node.record", {"name": f"o{i}"}, parents=[os.urandom(32)],
                     seq=5, prev=os.urandom(32)) for i in range(20)]
    assert {v.status for v in r.ingest(waiting, source="honest").verdicts} == {"buffered"}
    flood = [craft(KEY, src, "node.record", {"name": f"f{i}"}, parents=[os.urandom(32)],
                   seq=5, prev=os.urandom(32)) for i in range(300)]
    r.ingest(flood, source="flood")
    assert all(opm.decode(w).id in r.buffer for w in waiting)
    assert len(r.buffer) == 20 + 100


async def test_the_configured_bounds_are_the_ones_in_force(short_tmp: Path) -> None:
    """An empty buffer is falsy: `buffer or PendingBuffer()` replaced the configured one with
    the default, so state.buffer_max_ops and buffer_max_mb never took effect."""
    settings = make_settings(short_tmp, state={"buffer_max_ops": 150, "buffer_max_mb": 3,
                                               "claim_address": False})
    service = NodeService(settings)
    await service.start()
    try:
        buffer = service.parts.state.require_store().replica.buffer
        assert (buffer.max_ops, buffer.max_bytes) == (150, 3 * 1024 * 1024)
    finally:
        await service.stop()
