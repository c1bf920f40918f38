"""Hostile payloads through the whole replica: an admin (so every rule runs to its end) signs
ops of every kind with fields of every type. Whatever the payload, ingest gives a verdict per
op and never raises, and the replica stays usable."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from statekit import craft, found, write

from formation.identity import NodeIdentity
from formation.node.state import rules
from formation.node.state.op import MAX_STRING_BYTES

ADMIN, MEMBER = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (31, 32))
FIELDS = ["boot", "cidr", "cmdline", "desired", "digest", "endpoints", "expires_ms", "image",
          "instance", "invite", "ip", "keys", "name", "node", "observed", "parts", "placement",
          "proof", "record", "resources", "roles", "size", "spec", "token_key", "type", "value",
          "wg_endpoints", "wireguard_key", "builder", "formfile"]
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
    st.text(max_size=40), st.binary(max_size=40),
    st.sampled_from(["admin", "member", "running", "A", "10.42.0.9", "0" * 64, "f" * 128,
                     "10.0.0.0/8", "x" * (MAX_STRING_BYTES // 2)]))
_values = st.recursive(_scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)),
    max_leaves=8)
_payloads = st.dictionaries(st.sampled_from(FIELDS), _values, max_size=5)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(rules.RULES)), payload=_payloads, who=st.booleans())
def test_any_payload_gets_a_verdict(short_tmp: Path, kind: str, payload: dict,
                                    who: bool) -> None:
    r = found(short_tmp, ADMIN, [MEMBER], os.urandom(6).hex())
    try:
        raw = craft(ADMIN if who else MEMBER, r, kind, dict(sorted(
            payload.items(), key=lambda kv: (len(kv[0]), kv[0]))))
        [verdict] = r.ingest([raw]).verdicts
        assert verdict.status in ("accepted", "refused", "buffered")
        write(r, ADMIN, "node.record", {"name": "after"})  # still writable
    finally:
        r.close()
        for leftover in short_tmp.iterdir():
            leftover.unlink()
