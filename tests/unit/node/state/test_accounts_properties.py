"""Property test (hypothesis): an admin changing and removing an account while two of its keys
write instances on other replicas, with syncs at random; every op ever signed, fed to fresh
replicas in any order (and twice), gets the same verdict everywhere and gives the same views,
including which ops are void because a revocation did not see them, and quotas hold for every
op that saw the account's instances."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from statekit import SHUFFLER, all_raws, craft, found, replica, spec, sync, views, write

from formation.identity import NodeIdentity
from formation.node.state.op import decode

ADMIN = NodeIdentity.from_seed(b"\x01" * 32)
KEYS = (NodeIdentity.from_seed(b"\x21" * 32), NodeIdentity.from_seed(b"\x22" * 32))
PROFILE = settings(max_examples=20, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
step = st.tuples(st.integers(0, 2), st.sampled_from(["write", "write", "sync"]),
                 st.integers(0, 2), st.integers(0, 5))


def _admin_write(r, choice: int) -> None:
    if choice == 5:
        write(r, ADMIN, "account.remove", {"name": "alice"})
        return
    keys = [[KEYS[0]], [KEYS[1]], list(KEYS)][choice % 3]
    write(r, ADMIN, "account.set", {"name": "alice", "keys": [k.public_key_hex for k in keys],
                                    "roles": ["user"], "quotas": {"instances": 1 + choice % 3}})


def _tenant_write(r, who: NodeIdentity, choice: int, n: int) -> bytes:
    mine = [i for i in r.view("instances") if i.get("account") == "alice"]
    if choice >= 4 and mine:
        return craft(who, r, "instance.delete", {"instance": mine[0]["key"]})
    return craft(who, r, "instance.create", {"name": f"i{n}", "spec": spec(vcpus=1 + choice),
                                             "account": "alice"})


@given(steps=st.lists(step, min_size=4, max_size=24), seed=SHUFFLER)
@PROFILE
def test_account_histories_converge_with_equal_verdicts(steps, seed) -> None:
    base = Path(tempfile.mkdtemp(prefix="fm-acct-"))
    try:
        r0 = found(base, ADMIN, [], "p0")
        write(r0, ADMIN, "account.set", {"name": "alice", "roles": ["user"],
                                         "keys": [k.public_key_hex for k in KEYS],
                                         "quotas": {"instances": 2}})
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
                raw = _tenant_write(reps[actor], KEYS[actor - 1], choice, n)
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
            fresh.ingest(order)  # parents may come later: held, then judged when they come
            fresh.ingest(order[: len(order) // 2])  # duplicates change nothing
            assert len(fresh.buffer) == 0
            outcomes.append(({decode(raw).id for raw in all_raws(fresh)}, views(fresh)))
            assert fresh.rebuild()["equal"] is True
        first = outcomes[0]
        assert outcomes[1] == first
        # the writers' own replicas, once they hold everything, agree too
        for rep in reps:
            rep.ingest(raws)
            assert {decode(raw).id for raw in all_raws(rep)} == first[0]
            assert views(rep) == first[1]
    finally:
        shutil.rmtree(base, ignore_errors=True)
