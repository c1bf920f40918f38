"""The StateStore's Python API: what joining, gossip and reconcilers build on."""

from __future__ import annotations

import time

import pytest
from statekit import NETWORK

from formation.identity import NodeIdentity
from formation.node.state.op import Op, OpError, build_body, op_id_of, sign_body
from formation.node.state.replica import Replica
from formation.node.state.store import StateStore
from formation.node.state.verify import POOL_MIN_OPS


async def test_invite_admits_once_and_subscribers_hear_every_op(short_tmp) -> None:
    founder = await StateStore.open(short_tmp / "a.db", NodeIdentity.generate())
    joiner = await StateStore.open(short_tmp / "b.db", NodeIdentity.generate())
    heard: list[str] = []
    joiner.subscribe(lambda ops, origin: heard.extend(op.kind for op in ops))
    try:
        await founder.create_network("lab", "10.3.0.0/24")
        invite, seed = await founder.create_invite(int(time.time() * 1000) + 60_000,
                                                   token_seed=bytes(range(32)))
        assert seed == bytes(range(32))  # the token's seed, derived from its secret
        raws = [raw for _, raw in await founder.log(0, 100)]
        verdicts = await joiner.ingest(raws, origin="test")
        assert {v.status for v in verdicts} == {"accepted"}
        assert not joiner.is_member_key(joiner.identity.public_key_hex)
        # an admin naming another invite op than the token's: refused before anything is signed
        with pytest.raises(OpError, match="no invite for this token"):
            await joiner.consume_invite(invite.id, bytes(32))
        with pytest.raises(OpError, match="no invite for this token"):
            await joiner.consume_invite(invite.parents[0], seed)
        consumed = await joiner.consume_invite(invite.id, seed)
        assert joiner.is_member_key(joiner.identity.public_key_hex)
        await founder.ingest([consumed.raw])
        assert founder.is_member_key(joiner.identity.public_key_hex)
        [view] = await founder.view("invites")
        assert view["consumed_by"] == joiner.identity.public_key_hex
        with pytest.raises(OpError, match="already used"):
            await joiner.consume_invite(invite.id, seed)
        assert heard == ["network.genesis", "invite.create", "invite.consume"]
        await joiner.append("node.record", {"name": "joiner"})
        assert [n["name"] for n in await joiner.view("nodes") if "name" in n] == ["joiner"]
    finally:
        await founder.close()
        await joiner.close()


def _chain(author: NodeIdentity, after: Op, count: int) -> list[bytes]:
    """`count` records by `author` (a member), each on the previous one."""
    out, prev, parent = [], None, after.id
    for seq in range(1, count + 1):
        body = build_body(NETWORK, author.public_key, seq, prev, [parent],
                          (after.hlc[0] + seq, 0),
                          "node.record", {"name": f"r{seq}"})
        out.append(sign_body(body, author.sign))
        prev = parent = op_id_of(out[-1])
    return out


async def test_large_batches_verified_in_workers_even_when_one_dies(short_tmp) -> None:
    admin, writer = NodeIdentity.generate(), NodeIdentity.generate()
    source = Replica(short_tmp / "src.db", durable=False)
    source.create_network(admin.sign, admin.public_key, NETWORK, "lab", "10.3.0.0/24")
    admit = source.append(admin.sign, admin.public_key, "node.admit",
                          {"node": writer.public_key_hex, "roles": ["member"]})
    raws = [raw for _, raw in source.log_page(0, 10)]
    ops = _chain(writer, admit, 3 * POOL_MIN_OPS)
    second = ops[POOL_MIN_OPS:2 * POOL_MIN_OPS]
    forged = bytearray(second[5])
    forged[-1] ^= 1  # a bad signature inside a batch the workers check
    second[5] = bytes(forged)
    store = await StateStore.open(short_tmp / "a.db", NodeIdentity.generate())
    try:
        first = await store.ingest(raws + ops[:POOL_MIN_OPS])
        assert {v.status for v in first} == {"accepted"}
        pool = store._signatures._pool
        assert pool is not None  # went through the worker processes
        for process in list(pool._processes.values()):
            process.kill()
        verdicts = await store.ingest(second)
        assert [v.status for v in verdicts[:6]] == ["accepted"] * 5 + ["refused"]
        assert verdicts[5].reason == "bad_signature"
        assert {v.status for v in verdicts[6:]} == {"buffered"}  # the genuine parent is missing
        assert store._signatures._pool is not pool  # the broken pool was let go
        rest = await store.ingest(ops[POOL_MIN_OPS + 5:])  # the genuine op, then the rest
        assert {v.status for v in rest} <= {"accepted", "duplicate"}
        assert store.replica.count == len(raws) + len(ops)
    finally:
        await store.close()
        source.close()
