"""Account invites in the store (account_invites.py): an admin's account.invite, the invited
key's account.redeem with the invite key's proof, judged from each op's causal past on real
replicas (real SQLite, real Ed25519 keys), and hostile variants: each refused in one line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from statekit import NETWORK, craft, found, replica, spec, sync, write

from formation.discovery.account_token import proof_message
from formation.identity import NodeIdentity
from formation.node.state.op import decode

ADMIN, NODE = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (1, 2))
ALICE, NEW, OTHER, RELAY = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (10, 20, 21, 22))
DAY_MS = 86_400_000


@pytest.fixture
def base(short_tmp: Path) -> Path:
    return short_tmp


def invite_key(n: int = 0) -> SigningKey:
    return SigningKey(hashlib.sha256(b"secret" + bytes([n])).digest())


def with_account(base: Path, name: str = "a"):
    r = found(base, ADMIN, [NODE], name)
    write(r, ADMIN, "account.set", {"name": "alice", "keys": [ALICE.public_key_hex],
                                    "roles": ["user"]})
    return r


def invite(r, inv: SigningKey, account: str = "alice", until_ms: int | None = None,
           who: NodeIdentity = ADMIN):
    until = until_ms if until_ms is not None else r.clock.last[0] + DAY_MS
    return write(r, who, "account.invite", {"account": account,
                                            "invite_key": bytes(inv.verify_key).hex(),
                                            "until_ms": until})


def redeem_payload(inv: SigningKey, key: NodeIdentity, account: str = "alice",
                   network: bytes = NETWORK) -> dict:
    proof = inv.sign(proof_message(network, account, key.public_key_hex)).signature
    return {"account": account, "key": key.public_key_hex,
            "invite_key": bytes(inv.verify_key).hex(), "proof": proof.hex()}


def verdict(r, raw: bytes):
    return r.ingest([raw]).verdicts[0]


def refused(r, raw: bytes) -> tuple[str, str]:
    v = verdict(r, raw)
    assert v.status == "refused", v
    assert "\n" not in v.message
    return v.reason, v.message


def keys_of(r, name: str = "alice") -> list[str]:
    return next(a["keys"] for a in r.view("accounts") if a["key"] == name)


def create(name: str) -> dict:
    return {"name": name, "spec": spec(), "account": "alice"}


def test_a_redeemed_key_joins_the_account_and_acts_for_it(base) -> None:
    r = with_account(base)
    inv = invite_key()
    invite(r, inv)
    assert verdict(r, craft(NEW, r, "account.redeem", redeem_payload(inv, NEW))).status \
        == "accepted"
    assert keys_of(r) == [ALICE.public_key_hex, NEW.public_key_hex]
    assert r.current_authority().accounts.of_key(NEW.public_key_hex).name == "alice"
    assert verdict(r, craft(NEW, r, "instance.create", create("web"))).status == "accepted"
    # used: a second redeem of the same invite (by another key) is refused
    reason, message = refused(r, craft(OTHER, r, "account.redeem", redeem_payload(inv, OTHER)))
    assert reason == "unauthorized" and "no open invite" in message
    assert r.rebuild()["equal"] is True


def test_hostile_redeems_are_refused_in_one_line(base) -> None:
    r = with_account(base)
    inv = invite_key()
    invite(r, inv, until_ms=r.clock.last[0] + 1000)
    good = redeem_payload(inv, NEW)
    cases = [
        # forged: signed by another key than the invite's
        (NEW, {**good, "proof": invite_key(9).sign(
            proof_message(NETWORK, "alice", NEW.public_key_hex)).signature.hex()},
         "payload.proof"),
        # a proof made for another network
        (NEW, redeem_payload(inv, NEW, network=bytes(16)), "payload.proof"),
        # a relay swaps in its own key: the proof names the person's key
        (RELAY, {**good, "key": RELAY.public_key_hex}, "payload.proof"),
        # or keeps the person's key but signs the op itself
        (RELAY, good, "must be signed by the key it adds"),
        # an invite for alice used for another account
        (NEW, {**redeem_payload(inv, NEW, account="bob")}, "payload.account"),
        # an invite nobody wrote
        (NEW, redeem_payload(invite_key(5), NEW), "no open invite"),
        (NEW, {**good, "proof": "zz"}, "payload.proof"),
        (NEW, {**good, "extra": 1}, "payload.extra"),
    ]
    for who, payload, expected in cases:
        _reason, message = refused(r, craft(who, r, "account.redeem", payload))
        assert expected in message, (expected, message)
    # expired at the redeem's HLC
    late = craft(NEW, r, "account.redeem", good, hlc=(r.clock.last[0] + 5000, 0))
    assert "expired" in refused(r, late)[1]
    # the invited key is already an account's
    member = craft(ALICE, r, "account.redeem", redeem_payload(inv, ALICE))
    assert "already a key of account 'alice'" in refused(r, member)[1]
    assert keys_of(r) == [ALICE.public_key_hex]
    assert [decode(raw).kind for _, raw in r.log_page(0, 10**9)][-1] == "account.invite"


def test_only_admins_invite_and_only_into_accounts_that_exist(base) -> None:
    r = with_account(base)
    inv = bytes(invite_key().verify_key).hex()
    until = r.clock.last[0] + DAY_MS
    hostile = craft(NODE, r, "account.invite", {"account": "alice", "invite_key": inv,
                                                "until_ms": until})
    reason, message = refused(r, hostile)
    assert reason == "unauthorized" and "only a network admin" in message
    tenant = craft(ALICE, r, "account.invite", {"account": "alice", "invite_key": inv,
                                                "until_ms": until})
    assert refused(r, tenant)[0] == "unauthorized"
    nobody = craft(ADMIN, r, "account.invite", {"account": "bob", "invite_key": inv,
                                                "until_ms": until})
    assert "no account 'bob'" in refused(r, nobody)[1]
    forever = craft(ADMIN, r, "account.invite", {"account": "alice", "invite_key": inv,
                                                 "until_ms": until + 40 * DAY_MS})
    assert refused(r, forever)[1].startswith("payload.until_ms")
    hostile_un = craft(NODE, r, "account.uninvite", {"invite_key": inv})
    assert refused(r, hostile_un)[0] == "unauthorized"


def test_an_uninvited_or_removed_accounts_invite_cannot_be_redeemed(base) -> None:
    r = with_account(base)
    first, second = invite_key(1), invite_key(2)
    invite(r, first)
    invite(r, second)
    write(r, ADMIN, "account.uninvite", {"invite_key": bytes(first.verify_key).hex()})
    assert "no open invite" in refused(r, craft(NEW, r, "account.redeem",
                                                redeem_payload(first, NEW)))[1]
    write(r, ADMIN, "account.remove", {"name": "alice"})
    write(r, ADMIN, "account.set", {"name": "alice", "keys": [ALICE.public_key_hex],
                                    "roles": ["user"]})
    # the removal ended the account's invites: a new account of that name does not inherit them
    assert "no open invite" in refused(r, craft(NEW, r, "account.redeem",
                                                redeem_payload(second, NEW)))[1]


def test_an_account_with_eight_keys_takes_no_ninth(base) -> None:
    r = found(base, ADMIN, [NODE])
    eight = [NodeIdentity.from_seed(bytes([60 + i]) * 32).public_key_hex for i in range(8)]
    write(r, ADMIN, "account.set", {"name": "alice", "keys": eight, "roles": ["user"]})
    inv = invite_key()
    invite(r, inv)
    assert "8 keys already" in refused(r, craft(NEW, r, "account.redeem",
                                                redeem_payload(inv, NEW)))[1]


def test_two_concurrent_redeems_of_one_invite_the_earlier_stands_everywhere(base) -> None:
    """Each redeem is valid in its own past (accepted everywhere); the earlier by (HLC, id)
    takes effect on every replica, whichever order they arrive in, and the other key's later
    ops are refused."""
    r1 = with_account(base, "a")
    inv = invite_key()
    invite(r1, inv)
    r2 = replica(base, "b")
    sync(r2, r1)
    hlc = r1.clock.last[0] + 10
    one = craft(NEW, r1, "account.redeem", redeem_payload(inv, NEW), hlc=(hlc, 0))
    two = craft(OTHER, r2, "account.redeem", redeem_payload(inv, OTHER), hlc=(hlc, 0))
    assert verdict(r1, one).status == verdict(r2, two).status == "accepted"
    # each key deploys before it learns of the other redeem: accepted where it was made
    made = {NEW.public_key_hex: craft(NEW, r1, "instance.create", create("by-new")),
            OTHER.public_key_hex: craft(OTHER, r2, "instance.create", create("by-other"))}
    assert verdict(r1, made[NEW.public_key_hex]).status == "accepted"
    assert verdict(r2, made[OTHER.public_key_hex]).status == "accepted"
    sync(r1, r2)
    sync(r2, r1)
    winner = min((decode(one), decode(two)), key=lambda o: o.order_key)
    loser = NEW if winner.author != NEW.public_key else OTHER
    for r in (r1, r2):
        assert keys_of(r) == [ALICE.public_key_hex, winner.author.hex()]
        # the loser's instance is void: its key's authority came from a void redeem
        assert [i["owner"] for i in r.view("instances")] == [winner.author.hex()]
        assert r.current_authority().accounts.of_key(loser.public_key_hex) is None
        assert r.rebuild()["equal"] is True
    assert views_equal(r1, r2)
    reason, message = refused(r1, craft(loser, r1, "instance.create", create("late")))
    assert reason == "unauthorized" and "neither a member nor" in message


def test_a_redeem_concurrent_with_the_accounts_removal_adds_nothing(base) -> None:
    """The removal did not see the redeem: the redeemed key's ops that did not see the
    removal are void (like any dropped key's), on every replica, in either order."""
    r = with_account(base)
    inv = invite_key()
    invite(r, inv)
    before = sorted(r.heads)
    top = r.clock.last[0]
    redeem = craft(NEW, r, "account.redeem", redeem_payload(inv, NEW), parents=before,
                   hlc=(top + 5, 0))
    other = replica(base, "b")
    sync(other, r)
    assert verdict(other, redeem).status == "accepted"
    used = craft(NEW, other, "instance.create", create("by-new"))
    assert verdict(other, used).status == "accepted"
    assert [i["name"] for i in other.view("instances")] == ["by-new"]
    write(r, ADMIN, "account.remove", {"name": "alice"})  # concurrent with both
    sync(other, r)
    sync(r, other)
    for x in (r, other):
        assert x.view("instances") == []
        assert x.current_authority().accounts.of_key(NEW.public_key_hex) is None
        assert x.rebuild()["equal"] is True


def test_removing_the_account_later_revokes_a_redeemed_key(base) -> None:
    """A set that leaves out a redeemed key revokes it like any other: its concurrent ops
    are void, its later ones refused."""
    r = with_account(base)
    inv = invite_key()
    invite(r, inv)
    assert verdict(r, craft(NEW, r, "account.redeem", redeem_payload(inv, NEW))).status \
        == "accepted"
    before = sorted(r.heads)
    top = r.clock.last[0]
    write(r, ADMIN, "account.set", {"name": "alice", "keys": [ALICE.public_key_hex],
                                    "roles": ["user"]})
    assert keys_of(r) == [ALICE.public_key_hex]
    backdated = craft(NEW, r, "instance.create", create("backdated"), parents=before,
                      hlc=(top + 5, 0))
    assert verdict(r, backdated).status == "accepted"
    assert r.view("instances") == []
    assert "neither a member nor" in refused(r, craft(NEW, r, "instance.create",
                                                      create("late")))[1]
    assert r.rebuild()["equal"] is True


def views_equal(a, b) -> bool:
    from statekit import views

    return views(a) == views(b)
