"""Authorization from the causal past, equivocation evidence, addresses, rebuild, restart."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from statekit import (
    NETWORK,
    all_raws,
    craft,
    found,
    ids,
    image_payload,
    random_key,
    replica,
    spec,
    sync,
    views,
    write,
)

from formation.identity import NodeIdentity
from formation.node.state.op import OpError, decode
from formation.node.state.rules import invite_proof_message

ADMIN, B, C = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (1, 2, 3))


@pytest.fixture
def base(short_tmp: Path) -> Path:
    return short_tmp


def refused(r, raw: bytes) -> str:
    verdict = r.ingest([raw]).verdicts[0]
    assert verdict.status == "refused", verdict
    return verdict.reason


def test_only_admins_admit_remove_and_change_roles(base) -> None:
    r = found(base, ADMIN, [B])
    for kind, payload in [("node.admit", {"node": C.public_key_hex, "roles": ["member"]}),
                          ("node.roles", {"node": B.public_key_hex, "roles": ["admin"]}),
                          ("node.remove", {"node": ADMIN.public_key_hex})]:
        before = views(r)
        assert refused(r, craft(B, r, kind, payload)) == "unauthorized"
        assert views(r) == before
    write(r, ADMIN, "node.roles", {"node": B.public_key_hex, "roles": ["admin"]})
    write(r, B, "node.admit", {"node": C.public_key_hex, "roles": ["member"]})
    assert {n["key"] for n in r.view("nodes")} == {k.public_key_hex for k in (ADMIN, B, C)}


def test_non_members_refused_and_removed_nodes_lose_their_voice(base) -> None:
    r = found(base, ADMIN, [B])
    assert refused(r, craft(C, r, "node.record", {"name": "c"})) == "unauthorized"
    write(r, B, "node.record", {"name": "b"})
    write(r, ADMIN, "node.remove", {"node": B.public_key_hex})
    assert refused(r, craft(B, r, "node.record", {"name": "b2"})) == "unauthorized"


def test_concurrent_op_of_a_removed_node_stands(base) -> None:
    """Kleppmann: validity depends on the causal past only, so an op concurrent with the removal
    is accepted everywhere (the same verdict on every replica); it is void in the views
    (test_revocation.py)."""
    a = found(base, ADMIN, [B])
    b = replica(base, "b")
    sync(b, a)
    concurrent = write(b, B, "node.record", {"name": "b"})
    write(a, ADMIN, "node.remove", {"node": B.public_key_hex})
    assert a.ingest([concurrent.raw]).verdicts[0].status == "accepted"
    sync(b, a)
    assert views(a) == views(b)
    assert not any(n["key"] == B.public_key_hex for n in a.view("nodes"))


def test_self_promotion_refused(base) -> None:
    r = found(base, ADMIN, [B])
    raw = craft(B, r, "node.roles", {"node": B.public_key_hex, "roles": ["admin"]})
    assert refused(r, raw) == "unauthorized"


def test_instances_owner_or_admin_and_status_only_by_assigned_node(base) -> None:
    r = found(base, ADMIN, [B, C])
    inst = write(r, B, "instance.create", {"name": "web", "spec": spec()})
    assert refused(r, craft(C, r, "instance.update",
                            {"instance": inst.id.hex(), "desired": "stopped"})) == "unauthorized"
    write(r, B, "instance.update", {"instance": inst.id.hex(), "desired": "stopped"})
    place = write(r, C, "instance.place", {"instance": inst.id.hex(),
                                           "node": C.public_key_hex})
    status = {"instance": inst.id.hex(), "placement": place.id.hex(),
              "observed": {"state": "running"}}
    assert refused(r, craft(B, r, "instance.status", status)) == "unauthorized"
    write(r, C, "instance.status", status)
    [item] = r.view("instances")
    assert item["placement"] == C.public_key_hex and item["observed"] == {"state": "running"}
    assert item["desired"] == "stopped" and item["owner"] == B.public_key_hex
    write(r, ADMIN, "instance.delete", {"instance": inst.id.hex()})
    assert r.view("instances") == []


def test_invite_consumed_once_and_expires(base) -> None:
    r = found(base, ADMIN, [B])
    token = NodeIdentity.from_seed(b"\x09" * 32)
    later = int(time.time() * 1000) + 3_600_000
    inv = write(r, ADMIN, "invite.create", {"token_key": token.public_key_hex,
                                            "expires_ms": later, "roles": ["member"]})
    assert refused(r, craft(B, r, "invite.create", {"token_key": token.public_key_hex,
                                                    "expires_ms": later, "roles": ["member"]}))

    def consume(who: NodeIdentity, signer: NodeIdentity = token) -> bytes:
        proof = signer.sign(invite_proof_message(NETWORK, inv.id.hex(), who.public_key_hex))
        return craft(who, r, "invite.consume", {"invite": inv.id.hex(), "node": who.public_key_hex,
                                                "roles": ["member"], "proof": proof.hex()})

    assert refused(r, consume(C, signer=C)) == "unauthorized"  # proof not from the token
    assert r.ingest([consume(C)]).verdicts[0].status == "accepted"
    d = NodeIdentity.from_seed(b"\x04" * 32)
    assert refused(r, consume(d)) == "unauthorized"  # already used
    [invite] = r.view("invites")
    assert invite["consumed_by"] == C.public_key_hex
    write(r, C, "node.record", {"name": "c"})  # a member now


def test_equivocation_recorded_with_both_ops(base) -> None:
    a = found(base, ADMIN, [B])
    write(a, B, "node.record", {"name": "b"})
    one = craft(B, a, "node.record", {"name": "left"})
    two = craft(B, a, "node.record", {"name": "right"})  # same seq, same prev
    first, second = decode(one), decode(two)
    assert first.seq == second.seq
    results = a.ingest([one, two])
    assert [v.status for v in results.verdicts] == ["accepted", "accepted"]
    [evidence] = a.equivocations()
    assert evidence["author"] == B.public_key_hex and evidence["seq"] == first.seq
    assert sorted(evidence["ops"]) == sorted([first.id.hex(), second.id.hex()])
    other = replica(base, "o")
    sync(other, a)
    assert other.equivocations() == a.equivocations()
    assert views(other) == views(a)


def test_concurrent_address_claims_resolve_and_loser_reallocates(base) -> None:
    a = found(base, ADMIN, [B])
    b = replica(base, "b")
    sync(b, a)
    write(a, ADMIN, "address.claim", {"ip": "10.42.0.7"})
    write(b, B, "address.claim", {"ip": "10.42.0.7"})
    sync(a, b)
    sync(b, a)
    assert views(a) == views(b)
    holders = {x["ip"]: x["node"] for x in a.view("addresses") if not x.get("lost")}
    winner = holders["10.42.0.7"]
    loser = B if winner == ADMIN.public_key_hex else ADMIN
    loser_replica = b if loser is B else a
    assert loser_replica.address_needed(loser.public_key)
    ip = loser_replica.free_address()
    assert ip not in (None, "10.42.0.7")
    write(loser_replica, loser, "address.claim", {"ip": ip})
    sync(a, b)
    sync(b, a)
    assert not a.address_needed(ADMIN.public_key) and not a.address_needed(B.public_key)
    assert refused(a, craft(B, a, "address.claim", {"ip": "192.168.1.1"})) == "invalid"


def test_causality_rules(base) -> None:
    r = found(base, ADMIN, [B])
    head_hlc = r.clock.last
    raw = craft(B, r, "node.record", {"name": "b"}, hlc=(head_hlc[0] - 5, 0))
    assert refused(r, raw) == "causality"
    raw = craft(B, r, "node.record", {"name": "b"}, parents=[])
    assert refused(r, raw) == "causality"
    raw = craft(B, r, "node.record", {"name": "b"}, network=os.urandom(16))
    assert refused(r, raw) == "wrong_network"
    other = NodeIdentity.from_seed(b"\x07" * 32)
    second_genesis = craft(other, r, "network.genesis", {"name": "x", "cidr": "10.0.0.0/8"},
                           parents=[])
    assert refused(r, second_genesis) == "wrong_network"


def test_missing_parents_buffered_without_effect_then_applied(base) -> None:
    a = found(base, ADMIN, [B])
    b = replica(base, "b")
    raws = [raw for _, raw in a.log_page(0, 100)]
    before = views(b)
    results = b.ingest(raws[1:])
    assert {v.status for v in results.verdicts} == {"buffered"}
    assert views(b) == before and b.count == 0
    b.ingest(raws[:1])
    assert views(b) == views(a) and b.count == a.count and len(b.buffer) == 0


def test_buffer_bounded_in_count(base) -> None:
    from formation.node.state.buffer import PendingBuffer, entry_cost

    r = replica(base, "x")
    r.buffer = PendingBuffer(max_ops=10, max_bytes=10**9, share=1.0)
    src = found(base, ADMIN, [B])
    orphans = [craft(B, src, "node.record", {"name": f"n{i}"}, parents=[os.urandom(32)],
                     seq=5, prev=os.urandom(32)) for i in range(25)]
    r.ingest(orphans)
    assert len(r.buffer) == 10 and r.buffer.dropped == 15
    size = entry_cost(max(map(len, orphans)), 2)  # waits for its parent and previous op
    r.buffer = PendingBuffer(max_ops=1000, max_bytes=size * 4 + 10, share=1.0)
    r.ingest(orphans)
    assert len(r.buffer) == 4 and r.buffer.bytes <= size * 4 + 10
    assert r.count == 0  # nothing waiting was applied


def test_rebuild_equals_incremental_and_restart_keeps_everything(base) -> None:
    r = found(base, ADMIN, [B, C])
    inst = write(r, B, "instance.create", {"name": "db", "spec": spec()})
    img = write(r, C, "image.add", image_payload("alpine", size=5))
    write(r, ADMIN, "image.remove", {"image": img.id.hex()})
    write(r, ADMIN, "dns.set", {"name": "db.fog", "type": "A", "value": "10.42.0.9"})
    write(r, ADMIN, "account.set", {"name": "ops", "keys": [random_key()], "roles": ["admin"]})
    write(r, B, "instance.update", {"instance": inst.id.hex(), "spec": spec(vcpus=2)})
    before, heads = views(r), set(r.heads)
    assert r.rebuild() == {"ops": r.count, "equal": True, "differing": []}
    assert views(r) == before
    r.close()
    again = replica(base, "a")
    assert views(again) == before and again.heads == heads and ids(again)
    assert again.verify() == []
    write(again, B, "node.record", {"name": "b"})  # seq and prev continue after restart


def test_verify_reports_tampering(base) -> None:
    r = found(base, ADMIN, [B, C])
    row = r.db.execute("SELECT ord, raw FROM ops ORDER BY ord DESC LIMIT 1").fetchone()
    tampered = bytearray(row[1])
    tampered[-3] ^= 0xFF
    r.db.execute("UPDATE ops SET raw=? WHERE ord=?", (bytes(tampered), row[0]))
    r.db.execute("UPDATE ops SET id=? WHERE ord=1", (os.urandom(32),))
    faults = r.verify()
    assert any("signature" in f for f in faults)
    assert any("stored id differs" in f for f in faults)
    assert any("missing or stored after" in f for f in faults), faults


def test_append_refusal_raises(base) -> None:
    r = found(base, ADMIN, [B])
    with pytest.raises(OpError, match="admin"):
        write(r, B, "dns.set", {"name": "x.fog", "type": "A", "value": "1.1.1.1"})
    with pytest.raises(OpError, match=r"payload\.name"):
        write(r, B, "node.record", {"name": "Not A Name"})


def test_a_removed_node_frees_its_address(base) -> None:
    a = found(base, ADMIN, [B, C])
    write(a, B, "address.claim", {"ip": "10.42.0.1"})
    assert a.view("addresses") == [{"ip": "10.42.0.1", "node": B.public_key_hex}]
    assert a.free_address() == "10.42.0.2"
    write(a, ADMIN, "node.remove", {"node": B.public_key_hex})
    assert a.view("addresses") == []
    assert a.free_address() == "10.42.0.1"  # free again
    write(a, C, "address.claim", {"ip": "10.42.0.1"})
    assert a.view("addresses") == [{"ip": "10.42.0.1", "node": C.public_key_hex}]
    assert a.rebuild()["equal"] is True
    other = replica(base, "o")
    sync(other, a)
    assert views(other) == views(a)


def _consume(r, invite: bytes, who: NodeIdentity, token: NodeIdentity) -> bytes:
    proof = token.sign(invite_proof_message(NETWORK, invite.hex(), who.public_key_hex))
    return craft(who, r, "invite.consume", {"invite": invite.hex(), "node": who.public_key_hex,
                                            "roles": ["member"], "proof": proof.hex()})


def test_concurrent_uses_of_one_invite_the_earlier_admits_on_every_replica(base) -> None:
    a = found(base, ADMIN, [])
    token = NodeIdentity.from_seed(b"\x09" * 32)
    inv = write(a, ADMIN, "invite.create", {"token_key": token.public_key_hex,
                                            "expires_ms": int(time.time() * 1000) + 3_600_000,
                                            "roles": ["member"]})
    d = NodeIdentity.from_seed(b"\x04" * 32)
    joiners = {}
    for who, name in ((C, "c"), (d, "d")):  # each joins on its own replica, unaware of the other
        r = replica(base, name)
        sync(r, a)
        assert r.ingest([_consume(r, inv.id, who, token)]).verdicts[0].status == "accepted"
        write(r, who, "node.record", {"name": name})  # a member in its own branch
        joiners[who.public_key_hex] = r
    uses = [decode(raw) for r in joiners.values() for raw in all_raws(r)
            if decode(raw).kind == "invite.consume"]
    winner, loser = sorted(uses, key=lambda op: op.order_key)
    # the two arrive in either order at two other replicas
    first, second = replica(base, "x"), replica(base, "y")
    for target, order in ((first, [C, d]), (second, [d, C])):
        sync(target, a)
        for who in order:
            sync(target, joiners[who.public_key_hex])
    for r in (a, *joiners.values()):
        sync(r, first)
    reference = views(first)
    for r in (second, a, *joiners.values()):
        assert views(r) == reference
    nodes = {n["key"] for n in first.view("nodes")}
    assert winner.author.hex() in nodes and loser.author.hex() not in nodes
    [invite] = first.view("invites")
    assert invite["consumed_by"] == winner.author.hex()
    by_key = {C.public_key: C, d.public_key: d}
    late = craft(by_key[loser.author], first, "node.record", {"name": "late"})
    assert refused(first, late) == "unauthorized"  # not admitted once both uses are known
    write(first, by_key[winner.author], "node.record", {"name": "ok"})
    assert first.rebuild()["equal"] is True
