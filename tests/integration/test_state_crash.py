"""Durability: a `formation node` process killed with SIGKILL in the middle of ingesting and
appending loses no op it acknowledged. Repeated on the same data directory."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal

from statecluster import NodeProc, call, cleanup

from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api.client import ApiError, NodeUnreachable
from formation.api.models import Empty
from formation.identity import NodeIdentity
from formation.node.state import wire
from formation.node.state.op import build_body, decode, op_id_of, sign_body
from formation.node.state.replica import Replica

NETWORK = bytes(16)
ROUNDS = 3
OPS_PER_ROUND = 5000
BATCH = 25


def _chain(author: NodeIdentity, after: bytes, prev: bytes, seq: int, count: int,
           tag: str) -> list[bytes]:
    """`count` ops by `author`, each on the previous (signed by hand: fast)."""
    out, parent = [], after
    for i in range(count):
        body = build_body(NETWORK, author.public_key, seq + i, prev, [parent],
                          (10_000 * seq + i, 0), "node.record", {"name": f"{tag}{i}"})
        out.append(sign_body(body, author.sign))
        prev = parent = op_id_of(out[-1])
    return out


async def _push_until_killed(node: NodeProc, raws: list[bytes], acked: set[bytes]) -> None:
    with contextlib.suppress(NodeUnreachable):
        async with node.client() as client:
            for i in range(0, len(raws), BATCH):
                batch = raws[i:i + BATCH]
                result = await client.call(sr.state_sync_push,
                                           sm.OpBatch(ops=wire.pack(batch), count=len(batch)))
                if result.accepted + result.duplicate == len(batch):
                    acked.update(decode(r).id for r in batch)


SPEC = {"image": "ab" * 32, "vcpus": 1, "memory_mb": 512, "disk_gb": 5}


async def _append_until_killed(node: NodeProc, acked: set[bytes]) -> None:
    with contextlib.suppress(NodeUnreachable):
        async with node.client() as client:
            for i in range(10_000):
                op = await client.call(sr.state_append, sm.AppendRequest(
                    kind="instance.create", payload={"name": f"own{i}", "spec": SPEC}))
                acked.add(bytes.fromhex(op.id))


async def test_sigkill_during_ingest_loses_no_acknowledged_op(short_tmp) -> None:
    admin = NodeIdentity.from_seed(b"\x05" * 32)
    source = Replica(short_tmp / "source.db", durable=False)
    source.create_network(admin.sign, admin.public_key, NETWORK, "lab", "10.7.0.0/24")
    node = NodeProc(short_tmp, "victim")
    try:
        node.start()
        genesis = [raw for _, raw in source.log_page(0, 10)]
        await call(node, sr.state_sync_push, sm.OpBatch(ops=wire.pack(genesis), count=1))
        admit = source.append(admin.sign, admin.public_key, "node.admit", {
            "node": node.identity.public_key_hex, "roles": ["member"]})
        await call(node, sr.state_sync_push, sm.OpBatch(ops=wire.pack([admit.raw]), count=1))
        acked: set[bytes] = set()
        rng = random.Random(7)
        last, seq = admit.id, admit.seq
        for round_ in range(ROUNDS):
            raws = _chain(admin, last, last, seq + 1, OPS_PER_ROUND, f"r{round_}x")
            last, seq = decode(raws[-1]).id, seq + OPS_PER_ROUND
            before = len(acked)
            pusher = asyncio.create_task(_push_until_killed(node, raws, acked))
            writer = asyncio.create_task(_append_until_killed(node, acked))
            for _ in range(1000):  # until some batches are in, then a random moment
                if len(acked) >= before + 3 * BATCH or pusher.done():
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(rng.uniform(0.0, 0.2))
            assert not pusher.done(), "the kill must land during ingest; push more ops"
            node.stop(signal.SIGKILL)
            await asyncio.gather(pusher, writer)
            node.start()
            async with node.client() as client:
                missing = []
                for op_id in acked:
                    try:
                        await client.call(sr.state_op, op_id=op_id.hex())
                    except ApiError:
                        missing.append(op_id.hex())
                assert missing == [], f"round {round_}: lost acknowledged ops {missing[:3]}"
                verified = await client.call(sr.state_verify, Empty())
                assert verified.faults == []
            # the rest of this round's ops still apply after the restart
            await _push_until_killed(node, raws, acked)
        assert len(acked) > ROUNDS * 10
    finally:
        cleanup([node])
        source.close()
