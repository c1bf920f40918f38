"""A removed node's mesh address is freed for good: a removal releases every claim the node made
before it, so the address can be allotted again, and the node, if admitted again later, claims
anew instead of reviving its old claim and taking the address back. Every replica reaches the
same addresses whatever order the ops arrive in. Real replicas on real SQLite files."""

from __future__ import annotations

import random
from pathlib import Path

from statekit import all_raws, found, replica, sync, views, write

from formation.identity import NodeIdentity

ADMIN, B, C = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (1, 2, 3))


def holders(r) -> dict[str, str]:
    return {x["ip"]: x["node"] for x in r.view("addresses") if not x.get("lost")}


def test_a_node_admitted_again_does_not_take_back_its_old_address(short_tmp: Path) -> None:
    a = found(short_tmp, ADMIN, [B, C])
    write(a, B, "address.claim", {"ip": "10.42.0.1"})
    write(a, ADMIN, "node.remove", {"node": B.public_key_hex})
    assert a.free_address() == "10.42.0.1"
    write(a, C, "address.claim", {"ip": "10.42.0.1"})  # allotted again
    write(a, ADMIN, "node.admit", {"node": B.public_key_hex, "roles": ["member"]})

    assert holders(a) == {"10.42.0.1": C.public_key_hex}, "C keeps what it was given"
    assert a.view("addresses") == [{"ip": "10.42.0.1", "node": C.public_key_hex}]
    assert not a.address_needed(C.public_key)
    assert a.address_needed(B.public_key), "B claims anew"
    assert a.free_address() == "10.42.0.2"
    write(a, B, "address.claim", {"ip": "10.42.0.2"})
    assert holders(a) == {"10.42.0.1": C.public_key_hex, "10.42.0.2": B.public_key_hex}
    by_key = {n["key"]: n["address"] for n in a.view("nodes")}
    assert by_key[B.public_key_hex] == "10.42.0.2" and by_key[C.public_key_hex] == "10.42.0.1"
    assert a.rebuild()["equal"] is True


def test_removal_and_readmission_reach_the_same_addresses_in_any_arrival_order(
        short_tmp: Path) -> None:
    a = found(short_tmp, ADMIN, [B, C])
    write(a, B, "address.claim", {"ip": "10.42.0.1"})
    write(a, C, "address.claim", {"ip": "10.42.0.2"})
    write(a, ADMIN, "node.remove", {"node": B.public_key_hex})
    write(a, C, "address.claim", {"ip": "10.42.0.1"})  # C moves to the freed address
    write(a, ADMIN, "node.admit", {"node": B.public_key_hex, "roles": ["member"]})
    assert a.free_address() == "10.42.0.3"  # .2: C's superseded claim stays taken meanwhile
    write(a, B, "address.claim", {"ip": "10.42.0.3"})
    write(a, ADMIN, "node.remove", {"node": C.public_key_hex})
    expected = views(a)
    assert holders(a) == {"10.42.0.3": B.public_key_hex}
    assert a.free_address() == "10.42.0.1", "both of C's addresses are free"

    raws = all_raws(a)
    rng = random.Random(7)
    for n in range(4):
        shuffled = raws[:]
        rng.shuffle(shuffled)
        other = replica(short_tmp, f"o{n}")
        for raw in shuffled:  # one op a batch: out-of-order ones wait for their parents
            other.ingest([raw])
        assert views(other) == expected
        assert other.free_address() == a.free_address()
    synced = replica(short_tmp, "synced")
    sync(synced, a)
    assert views(synced) == expected and synced.rebuild()["equal"] is True
