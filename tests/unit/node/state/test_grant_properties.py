"""Property test (hypothesis): an account grants and revokes on one replica while two grantee
keys use their grants on two other replicas, with syncs at random and grants that expire while
the test runs. Every op ever signed, fed to fresh replicas in any order (and twice), gets the
same verdict everywhere and gives the same views (grants and instances); the writers' own
replicas agree once they hold everything; and no accepted use had its grant's revocation in
its causal past or was past its grant's expiry. Some uses are backdated by a hostile member
(old parents and time, withholding any revocation): every replica holds void exactly the uses
that some revocation of their grant did not see, computed here from the ops alone."""

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
ALICE = NodeIdentity.from_seed(b"\x21" * 32)
GRANTEES = (NodeIdentity.from_seed(b"\x31" * 32), NodeIdentity.from_seed(b"\x32" * 32))
SCOPES = (
    {"actions": ["instance.start", "instance.stop"], "on": "web-1"},
    {"actions": ["instance.stop"], "on": "web-2"},
    {"actions": ["instance.create", "instance.delete"], "prefix": "ci-"},
    {"actions": ["instance.update"], "prefix": "web-"},
)
PROFILE = settings(max_examples=20, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
step = st.tuples(st.integers(0, 2), st.sampled_from(["write", "write", "sync"]),
                 st.integers(0, 2), st.integers(0, 7))


def _alice_write(r, choice: int) -> bytes:
    grants = r.view("grants")
    if choice >= 5 and grants:
        return craft(ALICE, r, "grant.revoke", {"grant": grants[choice % len(grants)]["key"]})
    at = r.clock.last[0] + 1
    until = at + choice if choice % 2 else at + 3_600_000  # some end during the test
    return craft(ALICE, r, "grant.set", {
        "account": "alice", "grantee": GRANTEES[choice % 2].public_key_hex,
        "until_ms": until, **SCOPES[choice % len(SCOPES)]}, hlc=(at, 0))


def _use(r, who: NodeIdentity, choice: int, n: int) -> bytes | None:
    """Mostly what the grant allows (choice < 5), else something near it."""
    grants = [g for g in r.view("grants") if g["grantee"] == who.public_key_hex]
    if not grants:
        return None
    g = grants[(choice + n) % len(grants)]
    base = {"grant": g["key"], "account": "alice"}
    names = {i["name"]: i["key"] for i in r.view("instances")}
    ours = sorted(x for x in names if x.startswith("ci-"))
    if g.get("prefix") == "ci-" and (choice < 3 or not ours):
        return craft(who, r, "instance.create", {**base, "name": f"ci-{n}", "spec": spec()})
    if g.get("prefix") == "ci-" and choice < 5:
        return craft(who, r, "instance.delete", {**base, "instance": names[ours[0]]})
    target = g.get("on") or ["web-1", "web-2", *ours][choice % (2 + len(ours))]
    fields: dict = {"desired": "stopped" if choice % 2 else "running"}
    if choice >= 5:
        fields = {"spec": spec(vcpus=1 + choice % 2)}
    payload = {**base, "instance": names[target], **fields}
    if choice >= 6:  # with a hostile member: old parents and time, hiding any revocation
        return _backdated(r, who, payload)
    return craft(who, r, "instance.update", payload)


def _backdated(r, who: NodeIdentity, payload: dict) -> bytes:
    """A use whose only parents are its grant and the instance's create (and its author's
    previous op), stamped just above them: it withholds whatever came since, a revocation
    included, and its HLC may be below that revocation's."""
    deps = [bytes.fromhex(payload["grant"]), bytes.fromhex(payload["instance"])]
    seq = r.vv.get(who.public_key, 0) + 1
    prev = None
    if seq > 1:
        prev = r.db.execute("SELECT id FROM ops WHERE author=? AND seq=?",
                            (who.public_key, seq - 1)).fetchone()[0]
    top = max(r.hlc_of(d) for d in [*deps, *([prev] if prev else [])])
    return craft(who, r, "instance.update", payload, seq=seq, prev=prev,
                 parents=sorted(set(deps)), hlc=(top[0] + 1, 0))


@given(steps=st.lists(step, min_size=4, max_size=24), seed=SHUFFLER)
@PROFILE
def test_grant_histories_converge_with_equal_verdicts(steps, seed) -> None:
    base = Path(tempfile.mkdtemp(prefix="fm-grant-"))
    try:
        r0 = found(base, ADMIN, [], "p0")
        write(r0, ADMIN, "account.set", {"name": "alice", "roles": ["user"],
                                         "keys": [ALICE.public_key_hex],
                                         "quotas": {"instances": 4}})
        for name in ("web-1", "web-2"):
            r0.ingest([craft(ALICE, r0, "instance.create",
                             {"name": name, "spec": spec(), "account": "alice"})])
        for n, who in enumerate(GRANTEES):  # a grant each from the start: uses from step one
            write(r0, ALICE, "grant.set", {"account": "alice", "grantee": who.public_key_hex,
                                          "until_ms": r0.clock.last[0] + 3_600_000,
                                          **SCOPES[n * 2]})
        reps = [r0, replica(base, "p1"), replica(base, "p2")]
        sync(reps[1], r0)
        sync(reps[2], r0)
        signed: list[bytes] = []
        for n, (actor, action, other, choice) in enumerate(steps):
            if action == "sync":
                sync(reps[actor], reps[other])
                continue
            if actor != 0 and not choice % 3:
                sync(reps[actor], r0)  # a grantee learns of its grants
            raw = _alice_write(r0, choice) if actor == 0 else \
                _use(reps[actor], GRANTEES[actor - 1], choice, n)
            if raw is not None:
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
        for rep in reps:
            rep.ingest(raws)
            assert {decode(raw).id for raw in all_raws(rep)} == first[0]
            assert views(rep) == first[1]
        _no_use_beyond_its_grant(raws, first[0])
        void = _void_uses(raws, first[0])
        for rep in [*reps, fresh]:
            assert _voided_by(rep) == void
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _no_use_beyond_its_grant(raws: list[bytes], accepted: set[bytes]) -> None:
    """Checked from the ops alone (not with the rules' code): every accepted use came before
    its grant's expiry, and no revocation of its grant is among its ancestors."""
    ops = {o.id: o for o in map(decode, raws)}
    for op in ops.values():
        if op.id not in accepted or not op.kind.startswith("instance.") \
                or "grant" not in op.payload:
            continue
        grant = ops[bytes.fromhex(op.payload["grant"])]
        assert op.hlc[0] < grant.payload["until_ms"]
        past, todo = set(), list(op.deps)
        while todo:
            dep = todo.pop()
            if dep not in past and dep in ops:
                past.add(dep)
                todo.extend(ops[dep].deps)
        assert not any(ops[p].kind == "grant.revoke" and ops[p].payload["grant"] == grant.id.hex()
                       for p in past)


def _past(ops: dict, op) -> set[bytes]:
    past, todo = set(), list(op.deps)
    while todo:
        dep = todo.pop()
        if dep not in past and dep in ops:
            past.add(dep)
            todo.extend(ops[dep].deps)
    return past


def _void_uses(raws: list[bytes], accepted: set[bytes]) -> set[bytes]:
    """From the ops alone: the accepted uses that some accepted revocation of their grant does
    not hold in its causal past (grant_void.py's rule)."""
    ops = {o.id: o for o in map(decode, raws) if o.id in accepted}
    revokes = [o for o in ops.values() if o.kind == "grant.revoke"]
    pasts = {r.id: _past(ops, r) for r in revokes}
    return {o.id for o in ops.values() if o.kind.startswith("instance.")
            and "grant" in o.payload and any(r.payload["grant"] == o.payload["grant"]
                                             and o.id not in pasts[r.id] for r in revokes)}


def _voided_by(rep) -> set[bytes]:
    """The uses a replica holds void."""
    ops = [decode(raw) for raw in all_raws(rep)]
    return {o.id for o in ops if "grant" in o.payload and o.kind.startswith("instance.")
            and rep.revocation.grants.is_void(o)}
