"""Which keys reach the tenant routes as grantees (grant_keys.py): kept from the applied ops
in any order (a revocation may be applied before its grant on a node that synced late), from
the grants view at start, and judged live by the clock. Ops from a real replica."""

from __future__ import annotations

import time
from pathlib import Path

from statekit import craft, found, spec, write
from waiting import until_sync

from formation.identity import NodeIdentity
from formation.node.state.grant_keys import GranteeKeys
from formation.node.state.op import decode

ADMIN, ALICE, CI, OTHER = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (1, 10, 30, 31))


def test_grantees_follow_grants_revocations_and_expiry(short_tmp: Path) -> None:
    r = found(short_tmp, ADMIN, [])
    write(r, ADMIN, "account.set", {"name": "alice", "keys": [ALICE.public_key_hex],
                                    "roles": ["user"]})
    r.ingest([craft(ALICE, r, "instance.create", {"name": "web", "spec": spec(),
                                                  "account": "alice"})])
    now = int(time.time() * 1000)

    def grant(who: NodeIdentity, until: int):
        raw = craft(ALICE, r, "grant.set", {"account": "alice", "grantee": who.public_key_hex,
                                            "actions": ["instance.stop"], "on": "web",
                                            "until_ms": until})
        assert r.ingest([raw]).verdicts[0].status == "accepted"
        return decode(raw)

    long, soon = grant(CI, now + 3_600_000), grant(OTHER, r.clock.last[0] + 2)
    revoke_raw = craft(ALICE, r, "grant.revoke", {"grant": long.id.hex()})
    assert r.ingest([revoke_raw]).verdicts[0].status == "accepted"
    revoke = decode(revoke_raw)

    keys = GranteeKeys()
    keys.note([long])
    assert CI.public_key_hex in keys and ALICE.public_key_hex not in keys
    keys.note([revoke])
    assert CI.public_key_hex not in keys
    late = GranteeKeys()  # the revocation first, then its grant: still revoked
    late.note([revoke])
    late.note([long, soon])
    assert CI.public_key_hex not in late
    assert until_sync(lambda: OTHER.public_key_hex not in late, timeout_s=2)  # `soon` ends
    # 2 ms after its own time: expired by the clock
    started = GranteeKeys.from_view(r.view("grants"))
    assert CI.public_key_hex not in started and OTHER.public_key_hex not in started
    fresh = grant(CI, now + 3_600_000)
    started.note([fresh])
    assert CI.public_key_hex in started
