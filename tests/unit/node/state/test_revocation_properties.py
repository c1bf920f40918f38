"""Property tests (hypothesis) for revocation: admins admit, remove and demote each other on
their own replicas while partitioned, removed admins sign backdated ops (parents and HLC from
before their removal), and the whole set is delivered to fresh replicas in random orders and
batch sizes. Every replica that holds the same ops computes the same authority and views, and
a backdated op concurrent with a removal of its author that took effect never takes effect.

Replicas are real SQLite files with fsync off."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from statekit import all_raws, craft, found, image_payload, replica, sync, views, write

from formation.identity import NodeIdentity
from formation.node.state.authority import AUTHORITY_KINDS
from formation.node.state.op import OpError, decode

F, A1, A2, M = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (1, 2, 3, 4))
ACTORS = (F, A1, A2, M)
NEWCOMERS = tuple(NodeIdentity.from_seed(bytes([0x40 + i]) * 32) for i in range(3))
KEYS = [k.public_key_hex for k in ACTORS + NEWCOMERS]
PROFILE = settings(max_examples=30, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

step = st.tuples(st.integers(0, 3), st.sampled_from(["admin", "remove", "remove", "write",
                                                     "sync", "backdate", "backdate"]),
                 st.integers(0, 3), st.integers(0, 6))


class Tmp:
    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix="fm-rev-", dir="/tmp"))
        return self.path

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _admin_op(r, who: NodeIdentity, kind: str, payload: dict) -> None:
    try:
        write(r, who, kind, payload)
    except OpError:
        pass  # not (or no longer) an admin here: a correct node's write is refused


def _admin_change(other: int, choice: int) -> tuple[str, dict]:
    """Admit a newcomer or an actor, as admin or member, or demote someone."""
    target = KEYS[(other + choice) % len(KEYS)]
    if choice < 5:
        return "node.admit", {"node": target, "roles": ["admin" if choice % 2 else "member"]}
    return "node.roles", {"node": target, "roles": ["member"]}


def build(base: Path, steps) -> tuple[list[bytes], list[tuple[bytes, bytes]]]:
    """Returns every op of every replica, and the backdated ops (id, author)."""
    reps = [found(base, F, [], name="r0")]
    write(reps[0], F, "node.admit", {"node": A1.public_key_hex, "roles": ["admin"]})
    write(reps[0], F, "node.admit", {"node": A2.public_key_hex, "roles": ["admin"]})
    write(reps[0], F, "node.admit", {"node": M.public_key_hex, "roles": ["member"]})
    for i in (1, 2, 3):
        reps.append(replica(base, f"r{i}"))
        sync(reps[i], reps[0])
    history = {i: [sorted(reps[i].heads)] for i in range(4)}  # heads seen by each, over time
    backdated: list[tuple[bytes, bytes]] = []
    for n, (actor, action, other, choice) in enumerate(steps):
        r, who = reps[actor], ACTORS[actor]
        if action == "sync":
            sync(r, reps[other])
        elif action == "admin":
            _admin_op(r, who, *_admin_change(other, choice))
        elif action == "remove":
            _admin_op(r, who, "node.remove", {"node": KEYS[other]})
        elif action == "write":
            try:
                write(r, who, "image.add", image_payload(f"i{n}", size=n))
            except OpError:
                pass
        else:  # a removed actor (if any) learns of its removal and backdates an op
            for src in reps:
                sync(r, src)
            removed = [i for i, a in enumerate(ACTORS)
                       if not r.current_authority().is_member(a.public_key_hex)]
            if removed:
                attacker = removed[choice % len(removed)]
                sync(reps[attacker], r)
                found_op = _backdate(reps[attacker], ACTORS[attacker], history[attacker],
                                     choice)
                if found_op is not None:
                    backdated.append(found_op)
                history[attacker].append(sorted(reps[attacker].heads))
        history[actor].append(sorted(r.heads))
    raws: dict[bytes, bytes] = {}
    for r in reps:
        for raw in all_raws(r):
            raws.setdefault(decode(raw).id, raw)
    for r in reps:
        r.close()
    return list(raws.values()), backdated


def _backdate(r, who: NodeIdentity, history: list, choice: int):
    """Signs an op as if from before `who`'s removal, on heads it saw while a member."""
    for parents in reversed(history):
        if _is_member_at(r, parents, who):
            break
    else:
        return None
    seq = r.vv.get(who.public_key, 0) + 1
    prev = r.db.execute("SELECT id FROM ops WHERE author=? AND seq=?",
                        (who.public_key, seq - 1)).fetchone()
    deps = sorted({*parents, *(prev or ())})
    top = max(r.hlc_of(p) for p in deps)
    kind, payload = (("node.admit", {"node": KEYS[4 + choice % 3], "roles": ["admin"]})
                     if choice % 2 else
                     ("image.add", image_payload("back", size=0)))
    raw = craft(who, r, kind, payload, seq=seq, prev=prev[0] if prev else None, parents=deps,
                hlc=(top[0], top[1] + 1))
    if r.ingest([raw]).verdicts[0].status != "accepted":
        return None
    return decode(raw).id, who.public_key


def _is_member_at(r, parents: list[bytes], who: NodeIdentity) -> bool:
    past = r.contexts.past_context([r._info_of(p).ctx for p in parents])
    return r.contexts.authority(past).is_member(who.public_key_hex)


@PROFILE
@given(steps=st.lists(step, min_size=3, max_size=24), data=st.data())
def test_same_ops_same_authority_and_backdated_ops_never_count(steps, data) -> None:
    with Tmp() as base:
        raws, backdated = build(base, steps)
        event(f"backdated ops: {min(len(backdated), 2)}")
        outcomes = []
        for name in ("x", "y", "z"):
            order = data.draw(st.permutations(raws))
            chunk = data.draw(st.integers(1, 6))
            r = replica(base, name)
            for i in range(0, len(order), chunk):
                r.ingest(order[i:i + chunk])
            assert r.count == len(raws) and len(r.buffer) == 0
            authority = r.current_authority()
            outcomes.append((views(r), authority.members, r.revocation.resolution().void))
            assert r.rebuild()["equal"]
            res = r.revocation.resolution()
            scratch = r.contexts.resolve(frozenset(r.contexts.authority_ops))
            assert (scratch.valid, scratch.void, scratch.authority.members) == (
                res.valid, res.void, res.authority.members)  # extended = resolved afresh
            images = {i["id"] for i in r.view("images")}
            for op_id, author in backdated:
                op = decode(r.get_raw(op_id))
                removals = [rev for rev in res.revocations.get(author.hex(), ())
                            if rev.kind == "node.remove"]
                ctx = r.contexts.by_id[r._info_of(op_id).ctx]
                if not any(rev.id not in ctx for rev in removals):
                    continue  # no removal it could have dodged took effect
                if op.kind in AUTHORITY_KINDS:
                    assert op_id in res.void
                else:
                    assert op_id.hex() not in images
            r.close()
        assert outcomes[0] == outcomes[1] == outcomes[2]
        event(f"void authority ops: {min(len(outcomes[0][2]), 2)}")
