"""The migration ops through a real replica: `move` on instance.update (owner or admin, well
formed), and a move's claim (instance.place with `from`/`incoming`): only the node itself, only
from a placement of the same instance on another node, only a sane listener. Hostile members
included; a refused op changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from statekit import craft, found, spec, write

from formation.identity import NodeIdentity
from formation.node.vmm.placement import decide

ADMIN, B, N1, N2, C = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (51, 52, 53, 54, 55))
OFFER = {"cpus": 4, "memory_mb": 8192, "disk_gb": 100}


@pytest.fixture
def r(short_tmp: Path):
    r = found(short_tmp, ADMIN, [B, N1, N2, C], "m")
    for who, name in ((N1, "h1"), (N2, "h2")):
        write(r, who, "node.record", {"name": name, "resources": OFFER})
    return r


def verdict(r, who, kind: str, payload: dict):
    [v] = r.ingest([craft(who, r, kind, payload)]).verdicts
    return v


def placed(r):
    inst = write(r, B, "instance.create", {"name": "web", "spec": spec()})
    claim = write(r, N1, "instance.place", {"instance": inst.id.hex(),
                                            "node": N1.public_key_hex})
    return inst, claim


def move(to: str, mode: str = "live", n: int = 1) -> dict:
    return {"to": to, "mode": mode, "n": n}


def test_the_owner_or_an_admin_may_ask_for_a_move_and_the_view_keeps_it(r) -> None:
    inst, _ = placed(r)
    write(r, B, "instance.update", {"instance": inst.id.hex(), "move": move(N2.public_key_hex)})
    assert r.view("instances")[0]["move"] == move(N2.public_key_hex)
    leaving = {**move(N2.public_key_hex, n=2), "from": r.view("instances")[0]["placement_op"]}
    write(r, B, "instance.update", {"instance": inst.id.hex(), "move": leaving})
    assert r.view("instances")[0]["move"] == leaving
    write(r, ADMIN, "instance.update", {"instance": inst.id.hex(),
                                        "move": move(N1.public_key_hex, "restart", 2)})
    assert r.view("instances")[0]["move"] == move(N1.public_key_hex, "restart", 2)
    v = verdict(r, C, "instance.update", {"instance": inst.id.hex(),
                                          "move": move(C.public_key_hex, n=3)})
    assert v.reason == "unauthorized"  # a member that does not own it


@pytest.mark.parametrize(("bad", "message"), [
    ("h2", "payload.move: expected {to, mode, n}"),
    ({"to": "h2", "mode": "live", "n": 1}, "payload.move.to: expected a node key"),
    ({"to": "ab" * 32, "mode": "teleport", "n": 1}, "payload.move.mode: expected live"),
    ({"to": "ab" * 32, "mode": "live", "n": -1}, "payload.move.n: expected"),
    ({"to": "ab" * 32, "mode": "live", "n": True}, "payload.move.n: expected"),
    ({"to": "ab" * 32, "mode": "live", "n": 2**60}, "payload.move.n: expected"),
    ({"to": "ab" * 32, "mode": "live", "n": 1, "x": 1}, "payload.move.x: not a field"),
    ({"to": "ab" * 32, "mode": "live", "n": 1, "from": "x"}, "payload.move.from: expected"),
])
def test_a_malformed_move_is_refused_naming_the_field(r, bad, message) -> None:
    inst, _ = placed(r)
    before = r.count
    v = verdict(r, B, "instance.update", {"instance": inst.id.hex(), "move": bad})
    assert v.status == "refused" and v.message.startswith(message), v.message
    assert r.count == before and "move" not in r.view("instances")[0]


def test_the_target_claims_with_from_and_incoming_and_the_claim_holds(r) -> None:
    inst, claim = placed(r)
    moved = write(r, N2, "instance.place", {"instance": inst.id.hex(),
                                            "node": N2.public_key_hex, "from": claim.id.hex(),
                                            "incoming": "10.7.0.2:49152"})
    [item] = r.view("instances")
    assert item["placement"] == N2.public_key_hex and item["placement_op"] == moved.id.hex()
    assert item["placement_from"] == claim.id.hex() and item["incoming"] == "10.7.0.2:49152"
    d = decide(r.view("instances"), r.view("nodes"), {N1.public_key_hex, N2.public_key_hex})
    assert d[inst.id.hex()].node == N2.public_key_hex
    # a later plain claim clears the move's fields
    write(r, N1, "instance.place", {"instance": inst.id.hex(), "node": N1.public_key_hex})
    [item] = r.view("instances")
    assert item["placement_from"] is None and item["incoming"] is None


def test_a_member_forging_a_move_claim_for_another_node_is_refused(r) -> None:
    inst, claim = placed(r)
    before = r.count
    for who in (B, ADMIN, C, N1):  # owner, admin, a member, the source: none may claim for N2
        v = verdict(r, who, "instance.place", {
            "instance": inst.id.hex(), "node": N2.public_key_hex, "from": claim.id.hex(),
            "incoming": "10.7.0.2:49152"})
        assert (v.status, v.reason) == ("refused", "unauthorized"), who
    assert r.count == before and r.view("instances")[0]["placement"] == N1.public_key_hex


def test_a_bogus_from_or_incoming_is_refused(r) -> None:
    inst, claim = placed(r)
    other = write(r, B, "instance.create", {"name": "db", "spec": spec()})
    other_claim = write(r, N1, "instance.place", {"instance": other.id.hex(),
                                                  "node": N1.public_key_hex})
    before = r.count
    base = {"instance": inst.id.hex(), "node": N2.public_key_hex}
    cases = [
        ({**base, "from": other_claim.id.hex()}, "payload.from: not a placement of this"),
        ({**base, "from": inst.id.hex()}, "payload.from: not a placement of this"),
        ({**base, "from": "zz"}, "payload.from: expected an op id"),
        ({**base, "incoming": "10.7.0.2:49152"}, "payload.incoming: only with payload.from"),
    ]
    for bogus in ("10.7.0.2", "10.7.0.2:80", "10.7.0.2:70000", "0.0.0.0:49152",
                  "224.0.0.1:49152", "host.example:49152", "10.7.0.2:49152;rm", 49152,
                  "[::1]:49152", "10.7.0.2:4915 2", "x" * 400):
        cases.append(({**base, "from": claim.id.hex(), "incoming": bogus},
                      "payload.incoming: expected the migration listener"))
    for payload, message in cases:
        v = verdict(r, N2, "instance.place", payload)
        assert v.status == "refused" and v.message.startswith(message), (payload, v.message)
    # a move from a placement on the claimer itself is no move
    mine = write(r, N2, "instance.place", base)
    v = verdict(r, N2, "instance.place", {**base, "from": mine.id.hex()})
    assert v.status == "refused" and "same node" in v.message
    assert r.count == before + 1
