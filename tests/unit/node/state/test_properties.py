"""Property tests (hypothesis): any interleaving, duplication and reordering of valid ops gives
identical views; hostile ops are refused without effect; verdicts agree across replicas.

Replicas are real SQLite files with fsync off (durability is tested by the crash test)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from statekit import (
    NETWORK,
    all_raws,
    craft,
    found,
    ids,
    image_payload,
    replica,
    spec,
    sync,
    views,
    write,
)

from formation.identity import NodeIdentity
from formation.node.state.op import MAX_STRING_BYTES, OpError, decode
from formation.node.state.replica import Replica

ADMIN, B, C = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (1, 2, 3))
WRITERS = (ADMIN, B, C)
OUTSIDER = NodeIdentity.from_seed(b"\x08" * 32)
PROFILE = settings(max_examples=15, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

step = st.tuples(st.integers(0, 2), st.sampled_from(["write", "write", "sync"]),
                 st.integers(0, 2), st.integers(0, 5))


def _write(r, who: NodeIdentity, choice: int, n: int) -> None:
    """One valid op of a few kinds, chosen so that concurrent writes conflict."""
    instances = [i for i in r.view("instances") if i["owner"] == who.public_key_hex]
    try:
        if choice == 0:
            write(r, who, "node.record", {"name": f"n{n}"})
        elif choice == 1:
            write(r, who, "address.claim", {"ip": f"10.42.0.{1 + n % 3}"})
        elif choice == 2 or not instances:
            write(r, who, "instance.create", {"name": f"i{n}", "spec": spec(vcpus=1 + n % 128)})
        elif choice == 3:
            write(r, who, "instance.update", {"instance": instances[0]["key"],
                                              "spec": spec(memory_mb=512 + n)})
        elif choice == 4:
            write(r, who, "image.add", image_payload("x", size=n))
        else:
            images = r.view("images")
            if images and who is ADMIN:
                write(r, who, "image.remove", {"image": images[0]["id"]})
            else:
                write(r, who, "instance.delete", {"instance": instances[0]["key"]})
    except OpError:
        raise AssertionError("a valid write was refused") from None


def build_history(base: Path, steps) -> tuple[list[bytes], dict, set]:
    """Three writers on three replicas, writing concurrently and syncing now and then.
    Returns every op, the converged views and heads."""
    reps = [found(base, ADMIN, [B, C], name="w0"), replica(base, "w1"), replica(base, "w2")]
    sync(reps[1], reps[0])
    sync(reps[2], reps[0])
    for n, (actor, action, other, choice) in enumerate(steps):
        if action == "sync":
            sync(reps[actor], reps[other])
        else:
            _write(reps[actor], WRITERS[actor], choice, n)
    for _ in range(2):
        for a in reps:
            for b in reps:
                sync(a, b)
    reference = views(reps[0])
    for r in reps[1:]:
        assert views(r) == reference and r.heads == reps[0].heads
    return all_raws(reps[0]), reference, set(reps[0].heads)


class Tmp:
    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix="fm-prop-", dir="/tmp"))
        return self.path

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


@PROFILE
@given(steps=st.lists(step, min_size=2, max_size=14), data=st.data())
def test_any_order_and_duplication_gives_identical_views(steps, data) -> None:
    with Tmp() as base:
        raws, reference, heads = build_history(base, steps)
        delivered = data.draw(st.permutations(raws + data.draw(
            st.lists(st.sampled_from(raws), max_size=10))))
        chunk = data.draw(st.integers(1, 8))
        fresh = replica(base, "fresh")
        for i in range(0, len(delivered), chunk):
            fresh.ingest(delivered[i:i + chunk])
        assert views(fresh) == reference
        assert fresh.heads == heads
        assert fresh.count == len(raws) and len(fresh.buffer) == 0
        assert fresh.rebuild()["equal"]


def _hostile(base: Path, kind: int, valid: list[bytes]) -> bytes:
    """A hostile op built against a replica holding the valid history."""
    r = replica(base, f"h{kind}")
    r.ingest(valid)
    if kind == 0:  # forged signature
        raw = bytearray(craft(B, r, "node.record", {"name": "forged"}))
        raw[-1] ^= 0x55
        return bytes(raw)
    if kind == 1:  # tampered payload after signing (the id changes with it)
        raw = craft(B, r, "node.record", {"name": "aaaa"})
        return raw.replace(b"aaaa", b"bbbb")
    if kind == 2:  # a member doing an admin's work
        return craft(C, r, "node.admit", {"node": OUTSIDER.public_key_hex, "roles": ["admin"]})
    if kind == 3:  # not a member at all
        return craft(OUTSIDER, r, "node.record", {"name": "intruder"})
    if kind == 4:  # a parent nobody has
        return craft(B, r, "node.record", {"name": "orphan"}, parents=[os.urandom(32)])
    if kind == 5:  # oversized field
        return craft(B, r, "node.record", {"name": "x" * (MAX_STRING_BYTES + 1)})
    return craft(B, r, "node.record", {"name": "elsewhere"}, network=bytes(reversed(NETWORK)))


@PROFILE
@given(steps=st.lists(step, min_size=1, max_size=8), kinds=st.sets(st.integers(0, 6),
       min_size=1), data=st.data())
def test_hostile_ops_refused_without_effect_and_verdicts_agree(steps, kinds, data) -> None:
    with Tmp() as base:
        raws, reference, heads = build_history(base, steps)
        hostile = [_hostile(base, k, raws) for k in sorted(kinds)]
        finals = []
        for name in ("x", "y"):
            mixed = data.draw(st.permutations(raws + hostile))
            r = replica(base, name)
            for i in range(0, len(mixed), 5):
                r.ingest(mixed[i:i + 5])
            assert views(r) == reference
            assert r.heads == heads and r.count == len(raws)
            finals.append(ids(r))
        assert finals[0] == finals[1]
        hostile_ids = set()
        for raw in hostile:
            try:
                hostile_ids.add(decode(raw).id)
            except OpError:
                pass
        assert not hostile_ids & finals[0]


@PROFILE
@given(steps=st.lists(step, min_size=1, max_size=10), data=st.data())
def test_causal_verdicts_agree_across_replicas(steps, data) -> None:
    """Each op gets the same verdict on replicas that see the ops in different orders,
    including ops made invalid by a concurrent removal."""
    with Tmp() as base:
        raws, _reference, _heads = build_history(base, steps)
        src = replica(base, "src")
        src.ingest(raws)
        write(src, ADMIN, "node.remove", {"node": C.public_key_hex})
        after_removal = craft(C, src, "node.record", {"name": "late"})  # causally after: refused
        writer_c = Replica(base / "w2.db", durable=False)  # C's replica, before the removal
        concurrent = craft(C, writer_c, "node.record", {"name": "concurrent"})  # stands
        extra = [*all_raws(src)[len(raws):], after_removal, concurrent]
        verdicts = []
        for name in ("p", "q"):
            order = data.draw(st.permutations(raws + extra))
            r = replica(base, name)
            r.ingest(order)
            verdicts.append(ids(r))
        assert verdicts[0] == verdicts[1]
        assert decode(after_removal).id not in verdicts[0]
        assert decode(concurrent).id in verdicts[0]
