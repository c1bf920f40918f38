"""The StateStore's Python API: what joining, gossip and reconcilers build on."""

from __future__ import annotations

import time

import pytest

from formation.identity import NodeIdentity
from formation.node.state.op import OpError
from formation.node.state.store import StateStore


async def test_invite_admits_once_and_subscribers_hear_every_op(short_tmp) -> None:
    founder = await StateStore.open(short_tmp / "a.db", NodeIdentity.generate())
    joiner = await StateStore.open(short_tmp / "b.db", NodeIdentity.generate())
    heard: list[str] = []
    joiner.subscribe(lambda ops, origin: heard.extend(op.kind for op in ops))
    try:
        await founder.create_network("lab", "10.3.0.0/24")
        invite, seed = await founder.create_invite(int(time.time() * 1000) + 60_000)
        raws = [raw for _, raw in await founder.log(0, 100)]
        verdicts = await joiner.ingest(raws, origin="test")
        assert {v.status for v in verdicts} == {"accepted"}
        assert not joiner.is_member_key(joiner.identity.public_key_hex)
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
