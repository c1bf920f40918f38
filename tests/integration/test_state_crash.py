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
from formation.node.state.op import decode
from formation.node.state.replica import Replica

ROUNDS = 3
OPS_PER_ROUND = 400
BATCH = 25


async def _push_until_killed(node: NodeProc, raws: list[bytes], acked: set[bytes]) -> None:
    with contextlib.suppress(NodeUnreachable, ApiError):
        async with node.client() as client:
            for i in range(0, len(raws), BATCH):
                batch = raws[i:i + BATCH]
                result = await client.call(sr.state_sync_push,
                                           sm.OpBatch(ops=wire.pack(batch), count=len(batch)))
                if result.accepted + result.duplicate == len(batch):
                    acked.update(decode(r).id for r in batch)


async def _append_until_killed(node: NodeProc, acked: set[bytes]) -> None:
    with contextlib.suppress(NodeUnreachable, ApiError):
        async with node.client() as client:
            for i in range(10_000):
                op = await client.call(sr.state_append, sm.AppendRequest(
                    kind="instance.create", payload={"name": f"own{i}", "spec": {}}))
                acked.add(bytes.fromhex(op.id))


async def test_sigkill_during_ingest_loses_no_acknowledged_op(short_tmp) -> None:
    admin = NodeIdentity.from_seed(b"\x05" * 32)
    source = Replica(short_tmp / "source.db", durable=False)
    source.create_network(admin.sign, admin.public_key, bytes(16), "lab", "10.7.0.0/24")
    node = NodeProc(short_tmp, "victim")
    try:
        node.start()
        genesis = [raw for _, raw in source.log_page(0, 10)]
        await call(node, sr.state_sync_push, sm.OpBatch(ops=wire.pack(genesis), count=1))
        await call(node, sr.state_sync_push, sm.OpBatch(ops=wire.pack([
            source.append(admin.sign, admin.public_key, "node.admit", {
                "node": node.identity.public_key_hex, "roles": ["member"]}).raw]), count=1))
        acked: set[bytes] = set()
        rng = random.Random(7)
        for round_ in range(ROUNDS):
            raws = [source.append(admin.sign, admin.public_key, "node.record",
                                  {"name": f"r{round_}x{i}"}).raw for i in range(OPS_PER_ROUND)]
            pusher = asyncio.create_task(_push_until_killed(node, raws, acked))
            writer = asyncio.create_task(_append_until_killed(node, acked))
            await asyncio.sleep(rng.uniform(0.4, 1.2))
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
