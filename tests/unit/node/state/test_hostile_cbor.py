"""CBOR a hostile member signs that the canonical check cannot re-encode (shared references,
cycles, integers too long to print, exotic tags): each such op is refused alone, with a reason,
and the legitimate ops of the same push still land. The decoder is fuzzed with hypothesis."""

from __future__ import annotations

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from statekit import NETWORK, craft, found_with_member

from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.identity import NodeIdentity
from formation.node.state import op as opm
from formation.node.state import wire
from formation.node.state.op import decode
from formation.node.state.verify import check_one, decode_chunk

KEY = NodeIdentity.from_seed(b"\x05" * 32)
MARK = "\u2603" * 7  # a text value whose encoding is spliced out for the hostile bytes


def _signed_with(value: bytes, *, network: bytes = NETWORK, seq: int = 1,
                 prev: bytes | None = None, parents: tuple[bytes, ...] = (),
                 hlc: tuple[int, int] = (1000, 0), who: NodeIdentity = KEY) -> bytes:
    """An op whose payload's "x" is the raw CBOR `value`, validly signed by `who`."""
    body = opm.build_body(network, who.public_key, seq, prev, list(parents), hlc, "node.record",
                          {"x": MARK})
    spliced = body.replace(cbor2.dumps(MARK), value)
    assert spliced != body
    return opm.sign_body(spliced, who.sign)


def _signed_body(body: bytes, who: NodeIdentity = KEY) -> bytes:
    return opm.sign_body(body, who.sign)


SHARED_CYCLE = bytes([0xD8, 0x1C, 0x81, 0xD8, 0x1D, 0x00])  # 28([29(0)]): a list holding itself
HOSTILE = {
    "shared reference cycle": SHARED_CYCLE,
    "shared reference": bytes([0xD8, 0x1C, 0x80]),  # 28([])
    "dangling reference": bytes([0xD8, 0x1D, 0x05]),
    "bignum": cbor2.dumps(10**5000),
    "negative bignum": cbor2.dumps(-(10**300)),
    "NaN": bytes([0xF9, 0x7E, 0x00]),
    "undefined": bytes([0xF7]),
    "simple value": bytes([0xF0]),
    "date tag": cbor2.dumps(cbor2.CBORTag(1, 1e300)),
    "bad date tag": bytes([0xC0, 0x61, 0x78]),
    "decimal tag": cbor2.dumps(cbor2.CBORTag(4, [2**70, 10**30])),
    "set tag": bytes([0xD9, 0x01, 0x02, 0x81, 0x01]),
    "regex tag": bytes([0xD8, 0x23, 0x61, 0x28]),
    "mime tag": bytes([0xD8, 0x24, 0x60]),
    "uuid tag": bytes([0xD8, 0x25, 0x41, 0x00]),
    "indefinite list": bytes([0x9F, 0x01, 0xFF]),
    "string ref namespace": bytes([0xD9, 0x01, 0x00, 0x81, 0xD8, 0x19, 0x00]),
    "self-describe": bytes([0xD9, 0xD9, 0xF7, 0x01]),
    "map with a list key": bytes([0xA1, 0x81, 0x01, 0x01]),
}


@pytest.mark.parametrize("value", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_cbor_is_refused_never_raised(value: bytes) -> None:
    raw = _signed_with(value)
    result = check_one(raw)
    assert isinstance(result, opm.OpError), result
    assert result.reason in ("malformed", "oversized")
    [again] = decode_chunk([raw])
    assert isinstance(again, opm.OpError)


def test_huge_version_is_refused_with_a_readable_message() -> None:
    body = cbor2.dumps([10**5000, NETWORK, KEY.public_key, 1, None, [], [1, 0], "k", {}])
    result = check_one(_signed_body(body))
    assert isinstance(result, opm.OpError) and "version" in str(result)
    assert len(str(result)) < 300


# A strategy for CBOR items, including what this codec must refuse: tags of every kind, simple
# values, floats, indefinite lengths, huge integers and truncated or trailing bytes.
def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | extra]) + n.to_bytes(size, "big")
    raise ValueError(n)


_leaf = st.one_of(
    st.integers(0, 2**64 - 1).map(lambda n: _head(0, n)),
    st.integers(0, 2**64 - 1).map(lambda n: _head(1, n)),
    st.binary(max_size=40).map(lambda b: _head(2, len(b)) + b),
    st.text(max_size=20).map(lambda t: _head(3, len(t.encode())) + t.encode()),
    st.sampled_from([b"\xf4", b"\xf5", b"\xf6", b"\xf7", b"\xf0", b"\xf8\xff", b"\xf9\x7e\x00",
                     b"\xfa\x7f\x80\x00\x00", b"\xfb\x7f\xf8\x00\x00\x00\x00\x00\x01",
                     b"\x5f\x41\x00\xff", b"\x7f\x61a\xff", b"\xff", b"\x1c",
                     b"\x9b" + b"\xff" * 8]),
    st.integers(2**64, 10**400).map(cbor2.dumps),
)


def _composite(children):
    tagged = st.tuples(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 21, 22, 23, 24, 25, 26, 27, 28, 29,
                                        30, 32, 33, 34, 35, 36, 37, 256, 258, 260, 261, 55799,
                                        2**32]),
                       children).map(lambda t: _head(6, t[0]) + t[1])
    array = st.lists(children, max_size=4).map(lambda xs: _head(4, len(xs)) + b"".join(xs))
    indefinite = st.lists(children, max_size=3).map(lambda xs: b"\x9f" + b"".join(xs) + b"\xff")
    mapping = st.lists(st.tuples(children, children), max_size=3).map(
        lambda kv: _head(5, len(kv)) + b"".join(k + v for k, v in kv))
    return st.one_of(tagged, array, indefinite, mapping)


cbor_items = st.recursive(_leaf, _composite, max_leaves=12)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=cbor_items)
def test_fuzzed_payload_values_never_raise(value: bytes) -> None:
    raw = _signed_with(value)
    result = check_one(raw)
    assert isinstance(result, opm.Op | opm.OpError)
    if isinstance(result, opm.Op):  # accepted ones are canonical and re-encode to themselves
        assert opm.encode(cbor2.loads(result.body)) == result.body


@settings(max_examples=300, deadline=None)
@given(fields=st.lists(cbor_items, min_size=0, max_size=10))
def test_fuzzed_bodies_never_raise(fields: list[bytes]) -> None:
    body = _head(4, len(fields)) + b"".join(fields)
    result = check_one(_signed_body(body))
    assert isinstance(result, opm.OpError)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400))
def test_fuzzed_envelopes_never_raise(data: bytes) -> None:
    assert isinstance(check_one(data), opm.Op | opm.OpError)


async def test_a_hostile_op_is_refused_alone_and_its_neighbours_land(node, client) -> None:
    member = await found_with_member(client)
    replica = node.parts.state.require_store().replica
    good = craft(member, replica, "node.record", {"name": "good"}, network=replica.network)
    tip = decode(good)
    hostile = [
        _signed_with(value, network=replica.network, who=member, parents=tuple(sorted(
            replica.heads)), hlc=(tip.hlc[0], 5))
        for value in (SHARED_CYCLE, cbor2.dumps(10**5000))]
    huge_version = _signed_body(cbor2.dumps([10**5000, replica.network, member.public_key, 1,
                                             None, [], [1, 0], "k", {}]), member)
    batch = [hostile[0], good, hostile[1], huge_version]
    pushed = await client.call(sr.state_sync_push, sm.OpBatch(ops=wire.pack(batch),
                                                              count=len(batch)))
    assert (pushed.accepted, pushed.refused) == (1, 3)
    assert [r.index for r in pushed.refusals] == [0, 2, 3]
    assert all(r.reason == "malformed" and r.message for r in pushed.refusals)
    assert await node.parts.state.require_store().has(tip.id)
    status = await client.call(sr.state_status)
    assert status.refused.get("malformed") == 3


async def test_a_payload_the_rules_cannot_check_is_refused_alone(node, client) -> None:
    """node.admit with a list inside roles made the roles check raise TypeError (a 500 that
    lost the whole push); now that op is refused and the others of the push land."""
    member = await found_with_member(client)
    replica = node.parts.state.require_store().replica
    odd = craft(member, replica, "node.admit", {"node": member.public_key_hex, "roles": [[]]},
                network=replica.network)
    other = NodeIdentity.generate()
    await client.call(sr.state_append, sm.AppendRequest(
        kind="node.admit", payload={"node": other.public_key_hex, "roles": ["member"]}))
    good = craft(other, replica, "node.record", {"name": "fine"}, network=replica.network)
    pushed = await client.call(sr.state_sync_push, sm.OpBatch(ops=wire.pack([odd, good]),
                                                              count=2))
    assert (pushed.accepted, pushed.refused) == (1, 1)
    [refusal] = pushed.refusals
    assert refusal.index == 0 and refusal.id == decode(odd).id.hex()
    assert refusal.reason == "invalid" and "TypeError" in refusal.message
    assert await node.parts.state.require_store().has(decode(good).id)


async def test_an_op_that_breaks_applying_is_refused_alone(node, client) -> None:
    """The last guard: an op that makes applying raise after every check passed (here a value
    a constraint of the database refuses, set up by the test in the real SQLite file) is
    refused alone, and the rest of its push is applied one op at a time."""
    await client.call(sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    member, other = NodeIdentity.generate(), NodeIdentity.generate()
    for who in (member, other):
        await client.call(sr.state_append, sm.AppendRequest(
            kind="node.admit", payload={"node": who.public_key_hex, "roles": ["member"]}))
    store = node.parts.state.require_store()
    replica = store.replica
    replica.db.execute("CREATE TEMP TRIGGER no_poison BEFORE INSERT ON lww "
                       "WHEN NEW.field = 'wireguard_key' BEGIN SELECT RAISE(ABORT, 'no'); END")
    before = decode(craft(member, replica, "node.record", {"name": "before"},
                          network=replica.network))
    poison = craft(other, replica, "node.record", {"name": "p", "wireguard_key": "poison"},
                   network=replica.network)
    after = craft(member, replica, "node.record", {"name": "after"}, network=replica.network,
                  seq=before.seq + 1, prev=before.id, parents=[before.id],
                  hlc=(before.hlc[0] + 1, 0))
    batch = [before.raw, poison, after]
    pushed = await client.call(sr.state_sync_push, sm.OpBatch(ops=wire.pack(batch), count=3))
    assert (pushed.accepted, pushed.refused) == (2, 1), pushed
    [refusal] = pushed.refusals
    assert refusal.index == 1 and "IntegrityError" in refusal.message
    assert await store.has(before.id) and await store.has(decode(after).id)
    assert not await store.has(decode(poison).id)


async def test_a_failing_database_refuses_no_op(node, client) -> None:
    """The disk, not an op, failing (here the file locked by another connection for longer
    than SQLite waits) is an error for the whole push, never a refusal of its ops: the same
    push is accepted once the database works again."""
    import sqlite3

    from formation.api.client import ApiError

    member = await found_with_member(client)
    replica = node.parts.state.require_store().replica
    good = craft(member, replica, "node.record", {"name": "good"}, network=replica.network)
    batch = sm.OpBatch(ops=wire.pack([good]), count=1)
    locker = sqlite3.connect(str(replica.path), isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ApiError) as err:
            await client.call(sr.state_sync_push, batch)
        assert err.value.status == 500
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    pushed = await client.call(sr.state_sync_push, batch)
    assert (pushed.accepted, pushed.refused) == (1, 0)
