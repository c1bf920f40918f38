"""Revocation: a removed admin's ops that its remover had not seen are void, and so is every
authority they gave, on every replica and in any arrival order; of two admins removing each
other concurrently the senior stands; of two uses of one invite exactly one stands."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from statekit import (
    NETWORK,
    all_raws,
    craft,
    found,
    image_payload,
    replica,
    spec,
    sync,
    views,
    write,
)

from formation.identity import NodeIdentity
from formation.node.state.op import decode
from formation.node.state.rules import invite_proof_message

F, A, M, B, C, D = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (1, 2, 3, 4, 5, 6))


@pytest.fixture
def base(short_tmp: Path) -> Path:
    return short_tmp


def admins(r) -> set[str]:
    return set(r.view("network")[0]["admins"])


def nodes(r) -> set[str]:
    return {n["key"] for n in r.view("nodes")}


def backdated_attack(base: Path):
    """F founds, admits admin A and member M. A (on its own replica) signs node.admit of a new
    admin B with parents and HLC from before its removal; B then removes the founder. Returns
    (founder's replica after the removal of A, the attacker's ops)."""
    f = found(base, F, [M], name="f")
    write(f, F, "node.admit", {"node": A.public_key_hex, "roles": ["admin"]})
    a = replica(base, "a")
    sync(a, f)
    before_removal = sorted(f.heads)
    write(f, F, "node.remove", {"node": A.public_key_hex})
    hlc = (a.clock.last[0] + 1, 0)  # before the removal's time
    admit_b = craft(A, a, "node.admit", {"node": B.public_key_hex, "roles": ["admin"]},
                    parents=before_removal, hlc=hlc)
    assert a.ingest([admit_b]).verdicts[0].status == "accepted"
    remove_f = craft(B, a, "node.remove", {"node": F.public_key_hex})
    dns = craft(B, a, "dns.set", {"name": "evil.fog", "type": "A", "value": "10.0.0.66"},
                seq=2, prev=decode(remove_f).id, parents=[decode(remove_f).id],
                hlc=(decode(remove_f).hlc[0] + 1, 0))
    return f, [admit_b, remove_f, dns]


def test_backdated_admit_by_a_removed_admin_is_void_everywhere(base) -> None:
    f, attack = backdated_attack(base)
    m = replica(base, "m")  # a member relays the attacker's ops
    sync(m, f)
    verdicts = m.ingest(attack).verdicts
    assert [v.status for v in verdicts] == ["accepted"] * 3  # valid in their causal past
    sync(f, m)
    for r in (f, m):
        assert admins(r) == {F.public_key_hex}
        assert B.public_key_hex not in nodes(r) and A.public_key_hex not in nodes(r)
        assert r.view("dns") == []
        assert r.current_authority().is_admin(F.public_key_hex)
        assert not r.current_authority().is_member(B.public_key_hex)
        assert r.rebuild()["equal"] is True
    assert views(f) == views(m)
    # the founder keeps writing; B, whose admission is void, cannot once it sees the removal
    write(f, F, "node.record", {"name": "f"})
    late = craft(B, f, "dns.set", {"name": "late.fog", "type": "A", "value": "10.0.0.67"},
                 seq=3, prev=decode(attack[2]).id)
    assert f.ingest([late]).verdicts[0].status == "refused"


def test_every_arrival_order_of_the_attack_gives_the_same_views(base) -> None:
    f, attack = backdated_attack(base)
    honest = all_raws(f)
    removal = honest[-1]
    reference = None
    for i, order in enumerate(itertools.permutations([removal, *attack])):
        r = replica(base, f"p{i}")
        r.ingest(honest[:-1])
        for raw in order:  # one op per batch: the views are rebuilt when a void appears late
            r.ingest([raw])
        assert r.count == len(honest) + len(attack)
        snapshot = views(r)
        reference = reference or snapshot
        assert snapshot == reference
        assert admins(r) == {F.public_key_hex}
        r.close()


def test_removed_members_concurrent_ops_are_void_and_their_past_ones_stand(base) -> None:
    f = found(base, F, [M], name="f")
    m = replica(base, "m")
    sync(m, f)
    seen = write(m, M, "image.add", image_payload("seen"))
    sync(f, m)
    unseen = write(m, M, "image.add", image_payload("unseen"))
    write(f, F, "node.remove", {"node": M.public_key_hex})
    for first, second in ((f, m), (m, f)):
        sync(first, second)
    for r in (f, m):
        assert [i["name"] for i in r.view("images")] == ["seen"]
        assert r.ingest([unseen.raw]).verdicts[0].status == "duplicate"
    assert views(f) == views(m)
    assert seen.id != unseen.id


def test_mutual_concurrent_removal_the_senior_admin_stands(base) -> None:
    f = found(base, F, [], name="f")
    write(f, F, "node.admit", {"node": A.public_key_hex, "roles": ["admin"]})
    write(f, F, "node.admit", {"node": C.public_key_hex, "roles": ["admin"]})
    a, c = replica(base, "a"), replica(base, "c")
    sync(a, f)
    sync(c, f)
    write(a, A, "node.remove", {"node": C.public_key_hex})  # A was admitted first: senior
    write(c, C, "node.remove", {"node": A.public_key_hex})
    write(c, C, "node.admit", {"node": D.public_key_hex, "roles": ["member"]})
    for order in ((a, c), (c, a)):
        target = replica(base, f"t{id(order)}")
        sync(target, f)
        for src in order:
            sync(target, src)
        assert admins(target) == {F.public_key_hex, A.public_key_hex}
        assert D.public_key_hex not in nodes(target)  # C's concurrent admit went with C
        assert target.rebuild()["equal"] is True


def test_founder_removal_by_a_removed_admin_is_void_even_when_concurrent(base) -> None:
    """Removed admin A removes the founder concurrently (a removal it signed without having
    seen its own): the founder is senior, so the founder's removal of A stands."""
    f = found(base, F, [M], name="f")
    write(f, F, "node.admit", {"node": A.public_key_hex, "roles": ["admin"]})
    a = replica(base, "a")
    sync(a, f)
    write(f, F, "node.remove", {"node": A.public_key_hex})
    write(a, A, "node.remove", {"node": F.public_key_hex})
    for first, second in ((f, a), (a, f)):
        sync(first, second)
    for r in (f, a):
        assert admins(r) == {F.public_key_hex}
        assert A.public_key_hex not in nodes(r)
    assert views(f) == views(a)


def _consume(r, invite: bytes, who: NodeIdentity, token: NodeIdentity) -> bytes:
    proof = token.sign(invite_proof_message(NETWORK, invite.hex(), who.public_key_hex))
    return craft(who, r, "invite.consume", {"invite": invite.hex(), "node": who.public_key_hex,
                                            "roles": ["member"], "proof": proof.hex()})


def test_two_concurrent_uses_of_one_invite_exactly_one_stands_with_its_effects(base) -> None:
    f = found(base, F, [], name="f")
    token = NodeIdentity.from_seed(b"\x09" * 32)
    inv = write(f, F, "invite.create", {"token_key": token.public_key_hex,
                                        "expires_ms": int(time.time() * 1000) + 3_600_000,
                                        "roles": ["member"]})
    branches = {}
    for who, name in ((C, "c"), (D, "d")):
        r = replica(base, name)
        sync(r, f)
        r.ingest([_consume(r, inv.id, who, token)])
        write(r, who, "instance.create", {"name": f"vm-{name}", "spec": spec()})
        write(r, who, "image.add", image_payload(name))
        branches[who.public_key_hex] = r
    uses = sorted((decode(raw) for r in branches.values() for raw in all_raws(r)
                   if decode(raw).kind == "invite.consume"), key=lambda op: op.order_key)
    winner, loser = uses[0].author.hex(), uses[1].author.hex()
    results = []
    for i, order in enumerate(((C, D), (D, C))):
        target = replica(base, f"x{i}")
        sync(target, f)
        for who in order:
            sync(target, branches[who.public_key_hex])
        assert target.rebuild()["equal"] is True
        results.append(views(target))
        assert winner in nodes(target) and loser not in nodes(target)
        assert [i["owner"] for i in target.view("instances")] == [winner]
        assert [i["added_by"] for i in target.view("images")] == [winner]
        [invite] = target.view("invites")
        assert invite["consumed_by"] == winner
    assert results[0] == results[1]


def test_a_junior_admins_removal_voids_the_seniors_backdated_admission(base) -> None:
    f = found(base, F, [], name="f")
    write(f, F, "node.admit", {"node": A.public_key_hex, "roles": ["admin"]})
    write(f, F, "node.admit", {"node": C.public_key_hex, "roles": ["admin"]})
    before = sorted(f.heads)
    write(f, C, "node.remove", {"node": A.public_key_hex})  # C is junior to A
    raw = craft(A, f, "node.admit", {"node": B.public_key_hex, "roles": ["admin"]},
                parents=before, hlc=(max(f.hlc_of(h) for h in before)[0], 99))
    assert f.ingest([raw]).verdicts[0].status == "accepted"
    assert admins(f) == {F.public_key_hex, C.public_key_hex}
    assert B.public_key_hex not in nodes(f)
    assert f.rebuild()["equal"] is True


def test_a_backdated_fork_of_an_early_seq_is_void(base) -> None:
    """The removed member equivocates: a second op at an early seq, on early parents. The
    removal saw the first op at that seq, not the fork, so the fork is concurrent and void."""
    f = found(base, F, [M], name="f")
    early = sorted(f.heads)
    first = write(f, M, "image.add", image_payload("one"))
    write(f, M, "image.add", image_payload("two"))
    write(f, F, "node.record", {"name": "f"})
    write(f, F, "node.remove", {"node": M.public_key_hex})
    fork = craft(M, f, "image.add", image_payload("fork"), seq=1,
                 parents=early, hlc=(first.hlc[0], first.hlc[1]))
    assert f.ingest([fork]).verdicts[0].status == "accepted"
    assert sorted(i["name"] for i in f.view("images")) == ["one", "two"]
    fresh = replica(base, "fresh")
    fresh.ingest(list(reversed(all_raws(f))))
    assert views(fresh) == views(f)
    assert f.rebuild()["equal"] is True
