"""The op encoding: canonical, signed, hashed, bounded."""

from __future__ import annotations

import cbor2
import pytest
from statekit import NETWORK

from formation.identity import NodeIdentity
from formation.node.state import op as opm
from formation.node.state.verify import check_one

KEY = NodeIdentity.from_seed(b"\x01" * 32)


def _raw(payload: dict | None = None, kind: str = "node.record", **fields) -> bytes:
    body = opm.build_body(fields.get("network", NETWORK), KEY.public_key, 1, None, [],
                          (1000, 0), kind, payload if payload is not None else {"name": "a"})
    return opm.sign_body(body, KEY.sign)


def test_roundtrip_and_id() -> None:
    raw = _raw()
    op = check_one(raw)
    assert isinstance(op, opm.Op)
    assert op.id == opm.op_id_of(raw) and len(op.id) == 32
    assert op.author == KEY.public_key and op.seq == 1 and op.prev is None
    assert op.payload == {"name": "a"} and op.hlc == (1000, 0)
    assert opm.encode(cbor2.loads(raw)) == raw  # canonical on the wire


def test_signature_over_the_body_only_verifies_for_the_author() -> None:
    raw = bytearray(_raw())
    raw[-1] ^= 1
    result = check_one(bytes(raw))
    assert isinstance(result, opm.OpError) and result.reason == "bad_signature"
    other = NodeIdentity.from_seed(b"\x02" * 32)
    body = opm.build_body(NETWORK, KEY.public_key, 1, None, [], (1, 0), "node.record",
                          {"name": "a"})
    forged = opm.sign_body(body, other.sign)  # signed by someone else, claims KEY
    assert check_one(forged).reason == "bad_signature"


@pytest.mark.parametrize("mutate, reason", [
    (lambda r: r[:-1], "malformed"),
    (lambda r: b"\x83" + r[1:], "malformed"),
    (lambda r: r + b"\x00", "malformed"),
    (lambda r: b"garbage", "malformed"),
])
def test_malformed_envelopes_refused(mutate, reason) -> None:
    result = check_one(mutate(_raw()))
    assert isinstance(result, opm.OpError) and result.reason == reason


def test_non_canonical_body_refused() -> None:
    fields = [1, NETWORK, KEY.public_key, 1, None, [], [1, 0], "node.record",
              {"endpoints": [], "name": "a"}]  # map keys out of canonical order
    body = cbor2.dumps(fields)
    assert body != opm.encode(fields)
    raw = opm.sign_body(body, KEY.sign)
    result = check_one(raw)
    assert isinstance(result, opm.OpError) and result.reason == "malformed"


@pytest.mark.parametrize("payload, reason", [
    ({"name": "x" * (opm.MAX_STRING_BYTES + 1)}, "oversized"),
    ({"list": list(range(opm.MAX_LIST_ITEMS + 1))}, "oversized"),
    ({"a": {"b": {"c": {"d": {"e": {"f": {}}}}}}}, "oversized"),
    ({"big": ["y" * 2000] * 7}, "oversized"),
    ({"f": 1.5}, "malformed"),
])
def test_field_and_op_limits(payload, reason) -> None:
    raw = _raw(payload)
    result = check_one(raw)
    assert isinstance(result, opm.OpError), payload
    assert result.reason == reason


def test_whole_op_limit() -> None:
    raw = _raw({f"k{i}": "z" * 1000 for i in range(17)})
    assert len(raw) > opm.MAX_OP_BYTES
    assert check_one(raw).reason == "oversized"


def test_fields_checked() -> None:
    body = opm.encode([1, NETWORK, KEY.public_key, 2, None, [], [1, 0], "k", {}])
    assert "prev" in str(check_one(opm.sign_body(body, KEY.sign)))
    body = opm.encode([1, NETWORK, KEY.public_key, 1, None, [b"\x02" * 32, b"\x01" * 32],
                       [1, 0], "k", {}])
    assert "sorted" in str(check_one(opm.sign_body(body, KEY.sign)))
    body = opm.encode([2, NETWORK, KEY.public_key, 1, None, [], [1, 0], "k", {}])
    assert "version" in str(check_one(opm.sign_body(body, KEY.sign)))
