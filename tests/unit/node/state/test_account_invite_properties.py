"""Property test (hypothesis): an admin invites into an account, changes and removes it, while
invited keys redeem the invites (racing each other for the same one) and write instances on
other replicas, with syncs at random. Every op ever signed, fed to fresh replicas in any order,
gets the same verdicts and the same views and accounts everywhere, and no invite adds more
than one key."""

from __future__ import annotations

import hashlib
import random
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey
from statekit import NETWORK, SHUFFLER, all_raws, craft, found, replica, spec, sync, views, write

from formation.discovery.account_token import proof_message
from formation.identity import NodeIdentity
from formation.node.state.op import decode

ADMIN = NodeIdentity.from_seed(b"\x01" * 32)
OLD = NodeIdentity.from_seed(b"\x02" * 32)
PEOPLE = tuple(NodeIdentity.from_seed(bytes([0x30 + i]) * 32) for i in range(3))
INVITES = tuple(SigningKey(hashlib.sha256(bytes([i])).digest()) for i in range(2))
PROFILE = settings(max_examples=20, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
step = st.tuples(st.integers(0, 2), st.sampled_from(["write", "write", "sync"]),
                 st.integers(0, 2), st.integers(0, 5))


def _admin_write(r, choice: int) -> None:
    """Removes the account, or sets it anew (leaving out every redeemed key: a revocation).
    No invite is written twice, so each key beyond OLD came through its own invite."""
    if choice == 5:
        write(r, ADMIN, "account.remove", {"name": "alice"})
    else:
        write(r, ADMIN, "account.set", {"name": "alice", "keys": [OLD.public_key_hex],
                                        "roles": ["user"], "quotas": {"instances": 1 + choice}})


def _person_write(r, who: NodeIdentity, choice: int, n: int) -> bytes:
    if r.current_authority().accounts.of_key(who.public_key_hex) is None:
        inv = INVITES[choice % 2]
        proof = inv.sign(proof_message(NETWORK, "alice", who.public_key_hex)).signature
        return craft(who, r, "account.redeem", {
            "account": "alice", "key": who.public_key_hex,
            "invite_key": bytes(inv.verify_key).hex(), "proof": proof.hex()})
    return craft(who, r, "instance.create", {"name": f"i{n}", "spec": spec(),
                                             "account": "alice"})


@given(steps=st.lists(step, min_size=4, max_size=24), seed=SHUFFLER)
@example(steps=[(1, "write", 0, 0), (2, "write", 0, 0), (1, "sync", 2, 0), (2, "sync", 1, 0),
                (1, "write", 0, 3), (2, "write", 0, 3)], seed=random.Random(1))  # a race
@PROFILE
def test_invite_histories_converge_and_an_invite_adds_one_key(steps, seed) -> None:
    base = Path(tempfile.mkdtemp(prefix="fm-inv-"))
    try:
        r0 = found(base, ADMIN, [], "p0")
        write(r0, ADMIN, "account.set", {"name": "alice", "roles": ["user"],
                                         "keys": [OLD.public_key_hex]})
        for inv in INVITES:
            write(r0, ADMIN, "account.invite", {"account": "alice",
                                                "invite_key": bytes(inv.verify_key).hex(),
                                                "until_ms": r0.clock.last[0] + 3_600_000})
        reps = [r0, replica(base, "p1"), replica(base, "p2")]
        sync(reps[1], r0)
        sync(reps[2], r0)
        signed: list[bytes] = []
        for n, (actor, action, other, choice) in enumerate(steps):
            if action == "sync":
                sync(reps[actor], reps[other])
            elif actor == 0:
                _admin_write(r0, choice)
            else:
                who = PEOPLE[(actor - 1 + choice) % len(PEOPLE)]
                raw = _person_write(reps[actor], who, choice, n)
                signed.append(raw)
                reps[actor].ingest([raw])
        everything = {decode(raw).id: raw for rep in reps for raw in all_raws(rep)}
        for raw in signed:
            everything.setdefault(decode(raw).id, raw)
        raws = list(everything.values())
        outcomes = []
        for name in ("x", "y"):
            order = raws[:]
            seed.shuffle(order)
            fresh = replica(base, name)
            fresh.ingest(order)
            assert len(fresh.buffer) == 0
            accounts = {n: sorted(a.keys) for n, a in
                        fresh.current_authority().accounts.by_name.items()}
            outcomes.append(({decode(raw).id for raw in all_raws(fresh)}, views(fresh),
                             accounts))
            assert fresh.rebuild()["equal"] is True
            _extended_as_from_scratch(fresh)
            # the view shows the fold's keys, and no invite added two
            shown = {a["key"]: sorted(a["keys"]) for a in fresh.view("accounts")}
            assert {n: k for n, k in accounts.items()} == shown
            people = {p.public_key_hex for p in PEOPLE}
            assert len(people & set(accounts.get("alice", ()))) <= len(INVITES)
            valid = fresh.revocation.resolution().valid
            standing = [o for o in map(decode, all_raws(fresh)) if o.kind == "account.redeem"
                        and o.id in valid]
            assert len({o.payload["invite_key"] for o in standing}) == len(standing)
        assert outcomes[1] == outcomes[0]
        for rep in reps:
            rep.ingest(raws)
            assert views(rep) == outcomes[0][1]
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _extended_as_from_scratch(r) -> None:
    """Each context's resolution (extended op by op where it can be) equals resolving its
    authority ops from scratch: the open invites and revoked keys included."""
    for ctx in list(r.contexts.frontiers):
        a = r.contexts.resolution(ctx)
        b = r.contexts.resolve(r.contexts.by_id[ctx])
        assert set(a.valid) == set(b.valid) and a.void == b.void
        assert dict(a.authority.accounts.by_name) == dict(b.authority.accounts.by_name)
        assert dict(a.authority.account_invites) == dict(b.authority.account_invites)
        assert {k: [o.id for o in v] for k, v in a.account_revocations.items()} == {
            k: [o.id for o in v] for k, v in b.account_revocations.items()}
