"""Authority contexts stored by frontier (contexts.py, causal_index.py): every op's context is
exactly the set of authority ops in its causal past (checked against a walk of the log), every
cached or extended resolution equals resolving that set from scratch, a restart and an old
file that stored contexts whole load the same contexts, and storing N accounts costs O(N)."""

from __future__ import annotations

import random
import shutil
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from statekit import SHUFFLER, all_raws, craft, found, replica, sync, write

from formation.identity import NodeIdentity
from formation.node.state import db as dbm
from formation.node.state.authority import AUTHORITY_KINDS, resolve
from formation.node.state.causal_index import CausalIndex
from formation.node.state.op import decode
from formation.node.state.replica import Replica

ADMINS = (NodeIdentity.from_seed(b"\x01" * 32), NodeIdentity.from_seed(b"\x02" * 32))
TENANTS = [NodeIdentity.from_seed(bytes([0x30 + i]) * 32) for i in range(4)]
PROFILE = settings(max_examples=15, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@given(st.lists(st.lists(st.integers(0, 63), max_size=3), min_size=1, max_size=40))
@PROFILE
def test_the_index_answers_like_a_walk_of_the_dag(parent_picks) -> None:
    """Random DAGs in a causal order: below, size, members and maximal agree with sets."""
    index = CausalIndex()
    down: list[frozenset[bytes]] = []  # the brute-force down-set of each node
    names = [bytes([n]) * 32 for n in range(len(parent_picks))]
    for n, picks in enumerate(parent_picks):
        parents = {names[p % n] for p in picks} if n else set()
        closure = frozenset().union(*(down[names.index(p)] for p in parents))
        index.add(names[n], index.maximal(parents))
        down.append(closure | {names[n]})
    for n, name in enumerate(names):
        assert set(index.members(frozenset((name,)))) == down[n]
        assert index.size(frozenset((name,))) == len(down[n])
        for m, other in enumerate(names):
            assert index.below(other, frozenset((name,))) == (other in down[n])
            union = down[n] | down[m]
            top = index.maximal([name, other])
            assert frozenset().union(*(down[names.index(t)] for t in top)) == union
            assert all(t not in down[names.index(u)] for t in top for u in top if u != t)


def _causal_authority_past(r: Replica) -> dict[bytes, frozenset[bytes]]:
    """The ground truth: each op's authority ops at or below it, by walking parents."""
    out: dict[bytes, frozenset[bytes]] = {}
    for raw in all_raws(r):  # the log's order is a causal order
        op = decode(raw)
        mine = frozenset((op.id,)) if op.kind in AUTHORITY_KINDS else frozenset()
        out[op.id] = mine.union(*(out[d] for d in op.deps))
    return out


def _same_resolution(a, b) -> None:
    assert set(a.valid) == set(b.valid) and a.void == b.void
    assert a.authority.members == b.authority.members
    assert dict(a.authority.accounts.by_name) == dict(b.authority.accounts.by_name)
    assert dict(a.authority.accounts.by_key) == dict(b.authority.accounts.by_key)
    assert {k: [o.id for o in v] for k, v in a.account_revocations.items()} == {
        k: [o.id for o in v] for k, v in b.account_revocations.items()}


def _check_contexts(r: Replica) -> None:
    truth = _causal_authority_past(r)
    for raw in all_raws(r):
        op = decode(raw)
        ctx = r._info_of(op.id).ctx
        assert set(r.contexts.by_id[ctx]) == truth[op.id]
        assert len(r.contexts.by_id[ctx]) == len(truth[op.id])
    for ctx in list(r.contexts.frontiers):
        members = r.contexts.by_id[ctx]
        _same_resolution(r.contexts.resolution(ctx), r.contexts.resolve(members))
        # folding a concurrent branch from each op's predecessor = folding each op's past
        ops = [r.contexts.authority_ops[i] for i in members]
        pasts = {i: frozenset(r.contexts.past_of[i]) for i in members}
        plain, by_preds = resolve(ops, pasts), resolve(ops, pasts, r.contexts.preds)
        assert (plain.valid, plain.void, plain.authority.members) == (
            by_preds.valid, by_preds.void, by_preds.authority.members)
        assert dict(plain.authority.accounts.by_name) == dict(by_preds.authority.accounts.by_name)


step = st.tuples(st.integers(0, 2), st.sampled_from(["admin", "admin", "tenant", "sync"]),
                 st.integers(0, 2), st.integers(0, 7))


def _history(base: Path, steps) -> list[Replica]:
    """Two admins on three replicas writing accounts concurrently, tenants writing, syncs."""
    r0 = found(base, ADMINS[0], [], "p0")
    write(r0, ADMINS[0], "node.admit", {"node": ADMINS[1].public_key_hex,
                                        "roles": ["admin", "member"]})
    reps = [r0, replica(base, "p1"), replica(base, "p2")]
    for r in reps[1:]:
        sync(r, r0)
    for n, (actor, action, other, choice) in enumerate(steps):
        r = reps[actor]
        if action == "sync":
            sync(r, reps[other])
        elif action == "admin":
            name = f"t{choice % 3}"
            keys = [TENANTS[choice % 4].public_key_hex, TENANTS[(choice + other) % 4]
                    .public_key_hex]
            kind, payload = ("account.remove", {"name": name}) if choice == 7 else (
                "account.set", {"name": name, "keys": sorted(set(keys)), "roles": ["user"]})
            # an admin on two replicas forks its sequence (equivocates): hostile, and kept
            r.ingest([craft(ADMINS[other % 2], r, kind, payload)])
        else:
            r.ingest([craft(TENANTS[choice % 4], r, "instance.create", {
                "name": f"i{n}", "spec": {"image": "ab" * 32, "vcpus": 1, "memory_mb": 64,
                                          "disk_gb": 1},
                "account": f"t{choice % 3}"})])
    return reps


@given(steps=st.lists(step, min_size=3, max_size=20), seed=SHUFFLER)
@PROFILE
def test_every_context_is_the_exact_causal_past_and_resolves_as_from_scratch(steps,
                                                                             seed) -> None:
    base = Path(tempfile.mkdtemp(prefix="fm-ctx-"))
    try:
        reps = _history(base, steps)
        raws = [raw for r in reps for raw in all_raws(r)]
        seed.shuffle(raws)
        fresh = replica(base, "fresh")
        for i in range(0, len(raws), 3):  # any order, in small batches, with duplicates
            fresh.ingest(raws[i:i + 3])
        for r in [*reps, fresh]:
            _check_contexts(r)
        every = fresh.contexts.resolution(fresh.contexts.every() or 1)
        event(f"chains: {min(len(fresh.contexts.index.chains), 3)}")
        event(f"revoked keys: {min(len(every.account_revocations), 2)}")
        assert {decode(x).id for x in all_raws(fresh)} == {
            decode(x).id for r in reps for x in all_raws(r)}
    finally:
        shutil.rmtree(base)


def _to_whole_contexts(path: Path) -> None:
    """Rewrites a file the way code before frontiers stored contexts (every member)."""
    r = Replica(path, durable=False)
    whole = {c: b"".join(sorted(r.contexts.by_id[c])) for c in r.contexts.frontiers}
    r.close()
    db = sqlite3.connect(str(path), isolation_level=None)
    db.executemany("INSERT INTO contexts VALUES (?, ?)", list(whole.items()))
    db.execute("DROP TABLE context_frontiers")
    db.execute("DROP TABLE authority_past")
    db.execute("DELETE FROM meta WHERE key='contexts_format'")
    db.close()


def test_a_restart_and_an_old_whole_context_file_load_the_same_contexts(tmp_path) -> None:
    rng = random.Random(7)
    steps = [(rng.randrange(3), rng.choice(["admin", "tenant", "sync"]), rng.randrange(3),
              rng.randrange(8)) for _ in range(40)]
    reps = _history(tmp_path, steps)
    sync(reps[0], reps[1])
    sync(reps[0], reps[2])
    before = {c: set(reps[0].contexts.by_id[c]) for c in reps[0].contexts.frontiers}
    path = reps[0].path
    for r in reps:
        r.close()
    shutil.copy(path, tmp_path / "old.db")
    _to_whole_contexts(tmp_path / "old.db")
    assert sqlite3.connect(str(tmp_path / "old.db")).execute(
        "SELECT COUNT(*) FROM contexts").fetchone()[0] == len(before)
    restarted, migrated = Replica(path, durable=False), Replica(tmp_path / "old.db",
                                                                  durable=False)
    for r in (restarted, migrated):
        assert {c: set(r.contexts.by_id[c]) for c in before} == before
        _check_contexts(r)
        assert r.db.execute("SELECT COUNT(*) FROM contexts").fetchone()[0] == 0
        assert dbm.get_meta(r.db, "contexts_format") == b"frontier-1"
    # the same new ops get the same verdicts on both, and both reopen again
    new = [craft(ADMINS[1], restarted, "account.set", {
        "name": "late", "keys": [TENANTS[0].public_key_hex], "roles": ["user"]}),
           craft(TENANTS[0], restarted, "instance.create", {
               "name": "late", "account": "late",
               "spec": {"image": "ab" * 32, "vcpus": 1, "memory_mb": 64, "disk_gb": 1}},
                 hlc=(restarted.clock.last[0] + 2, 0))]
    verdicts = [[v.status for v in r.ingest(new).verdicts] for r in (restarted, migrated)]
    assert verdicts[0] == verdicts[1]
    for r in (restarted, migrated):
        path = r.path
        r.close()
        _check_contexts(Replica(path, durable=False))


def test_storing_accounts_costs_context_bytes_linear_in_their_number(tmp_path) -> None:
    """Each account.set is an authority op with a context of its own: stored by frontier it
    is one id (32 bytes), not every authority op before it."""
    r = found(tmp_path, ADMINS[0], [])
    for i in range(300):
        write(r, ADMINS[0], "account.set", {"name": f"a{i}", "roles": ["user"],
                                            "keys": [f"{i:064x}"]})
    stored = r.db.execute("SELECT COUNT(*), SUM(LENGTH(frontier)) FROM context_frontiers"
                          ).fetchone()
    assert stored[0] >= 300 and stored[1] <= 32 * stored[0]
    assert len(r.contexts.index.chains) == 1  # one admin writing in turn: one chain
    res = r.contexts.resolution(r.contexts.every())
    assert len(res.authority.accounts.by_name) == 300 and len(res.valid) == 301
    _same_resolution(res, r.contexts.resolve(r.contexts.authority_ops))


def test_a_long_branch_concurrent_with_another_admin_resolves_as_op_by_op(tmp_path) -> None:
    """A partition: one admin writes 60 accounts while another wrote one (and removes one of
    the first admin's accounts' keys by taking it): after the merge, resolving folds the long
    branch op by op from each op's predecessor, with the verdicts of a fold per op."""
    p0 = found(tmp_path, ADMINS[0], [], "p0")
    write(p0, ADMINS[0], "node.admit", {"node": ADMINS[1].public_key_hex,
                                        "roles": ["admin", "member"]})
    p1 = replica(tmp_path, "p1")
    sync(p1, p0)
    write(p1, ADMINS[1], "account.set", {"name": "b", "roles": ["user"],
                                         "keys": [TENANTS[0].public_key_hex]})
    for i in range(60):
        write(p0, ADMINS[0], "account.set", {"name": f"a{i}", "roles": ["user"],
                                             "keys": [f"{i + 1:064x}"]})
    write(p1, ADMINS[1], "node.remove", {"node": ADMINS[0].public_key_hex})
    sync(p0, p1)
    sync(p1, p0)
    write(p1, ADMINS[1], "account.set", {"name": "after", "roles": ["user"],
                                         "keys": [TENANTS[1].public_key_hex]})
    sync(p0, p1)
    for r in (p0, p1):
        _check_contexts(r)
        res = r.contexts.resolution(r.contexts.every())
        assert "after" in res.authority.accounts.by_name
        assert not any(f"a{i}" in res.authority.accounts.by_name for i in range(60))  # void
