"""Equivocation evidence from a member that signs many forks of one sequence number: its size
grows with the forks, not with their pairs; each equivocation is logged and published once;
status stays small. Real SQLite files."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from statekit import craft, found, replica, sync, write

from formation.identity import NodeIdentity
from formation.node.state import evidence
from formation.node.state.op import decode
from formation.node.state.replica import Replica

ADMIN, LIAR = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (11, 12))


def _forks(r: Replica, count: int, who: NodeIdentity = LIAR) -> list[bytes]:
    """`count` different ops of `who`, all with its next sequence number."""
    return [craft(who, r, "node.record", {"name": f"fork-{i}"}) for i in range(count)]


def _db_bytes(r: Replica) -> int:
    r.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return r.path.stat().st_size


def _growth_per_fork(base: Path, name: str, count: int) -> float:
    r = found(base, ADMIN, [LIAR], name)
    write(r, LIAR, "node.record", {"name": "honest"})
    forks = _forks(r, count)
    before = _db_bytes(r)
    verdicts = r.ingest(forks).verdicts
    assert [v.status for v in verdicts] == ["accepted"] * count
    grown = _db_bytes(r) - before
    r.close()
    return grown / count


def test_evidence_grows_linearly_in_the_forks(short_tmp: Path) -> None:
    """On main, 400 forks stored 79,800 pairs: bytes per fork grew with the forks."""
    few = _growth_per_fork(short_tmp, "few", 50)
    many = _growth_per_fork(short_tmp, "many", 400)
    assert many < 1.5 * few, (few, many)


def test_one_event_and_one_log_line_per_equivocation(short_tmp: Path, caplog) -> None:
    r = found(short_tmp, ADMIN, [LIAR])
    write(r, LIAR, "node.record", {"name": "honest"})
    forks = _forks(r, 300)
    caplog.set_level(logging.WARNING, logger="formation.node.state.evidence")
    result = r.ingest(forks)
    lines = [rec for rec in caplog.records if rec.name == "formation.node.state.evidence"]
    assert len(lines) == 1
    [event] = result.equivocations
    seq = decode(forks[0]).seq
    assert event["author"] == LIAR.public_key_hex and event["seq"] == seq
    assert sorted(event["ops"]) == sorted(decode(f).id.hex() for f in forks[:2])
    more = r.ingest(_forks(r, 5))  # one more fork of the same seq: counted, not announced
    assert more.equivocations == []
    assert len([rec for rec in caplog.records
                if rec.name == "formation.node.state.evidence"]) == 1
    [listed] = r.equivocations()
    assert listed["forks"] == 300 and listed["seq"] == seq
    assert len(listed["ops"]) <= evidence.OPS_SHOWN
    assert set(listed["ops"]) <= {decode(f).id.hex() for f in forks}
    assert r.equivocation_count == 299


def test_evidence_per_author_is_capped(short_tmp: Path) -> None:
    """Forks at more sequence numbers than the cap: the listing stops at the cap and the
    author's total still counts every fork."""
    r = found(short_tmp, ADMIN, [LIAR])
    cap = evidence.MAX_SEQS_PER_AUTHOR
    write(r, LIAR, "node.record", {"name": "first"})
    for i in range(cap + 5):
        write(r, LIAR, "node.record", {"name": f"n{i}"})
        seq = r.vv[LIAR.public_key]
        prev = r.db.execute("SELECT id FROM ops WHERE author=? AND seq=?",
                            (LIAR.public_key, seq - 1)).fetchone()[0]
        twin = craft(LIAR, r, "node.record", {"name": f"twin{i}"}, seq=seq, prev=prev)
        assert r.ingest([twin]).verdicts[0].status == "accepted"
    listed = [e for e in r.equivocations() if e["author"] == LIAR.public_key_hex]
    assert len(listed) == cap
    [author] = evidence.authors(r.db)
    assert author == {"author": LIAR.public_key_hex, "forks": cap + 5, "seqs_listed": cap}
    assert r.equivocation_count == cap + 5


def test_status_stays_fast_with_thousands_of_forks(short_tmp: Path) -> None:
    r = found(short_tmp, ADMIN, [LIAR])
    write(r, LIAR, "node.record", {"name": "honest"})
    r.ingest(_forks(r, 3000))
    started = time.perf_counter()
    listed = r.equivocations()
    assert time.perf_counter() - started < 0.5  # generous: a listing is a few index lookups
    assert len(listed) == 1 and listed[0]["forks"] == 3000


def test_evidence_is_the_same_on_every_replica_and_after_restart(short_tmp: Path) -> None:
    a = found(short_tmp, ADMIN, [LIAR])
    write(a, LIAR, "node.record", {"name": "honest"})
    a.ingest(_forks(a, 20))
    b = replica(short_tmp, "b")
    sync(b, a)
    assert b.equivocations() == a.equivocations()
    path = a.path
    a.close()
    again = Replica(path, durable=False)
    assert again.equivocations() == b.equivocations()
    assert again.equivocation_count == b.equivocation_count == 19


def test_old_pair_table_is_migrated(short_tmp: Path) -> None:
    """A database written by an older node has the pair table; on open the evidence is
    recounted from the log and the pair table dropped."""
    a = found(short_tmp, ADMIN, [LIAR])
    write(a, LIAR, "node.record", {"name": "honest"})
    a.ingest(_forks(a, 4))
    expected = a.equivocations()
    a.db.executescript("""
        DROP TABLE forks; DROP TABLE equivocators;
        CREATE TABLE equivocations (author BLOB NOT NULL, seq INTEGER NOT NULL,
          a BLOB NOT NULL, b BLOB NOT NULL, PRIMARY KEY (author, seq, a, b)) WITHOUT ROWID;
        INSERT INTO equivocations VALUES (x'00', 1, x'01', x'02');""")
    path = a.path
    a.close()
    again = Replica(path, durable=False)
    assert again.equivocations() == expected
    assert again.db.execute("SELECT name FROM sqlite_master WHERE name='equivocations'"
                            ).fetchone() is None


async def test_a_fork_flood_over_the_api_is_one_event_and_a_short_status(node, client) -> None:
    """One push of 400 forks of one seq: status lists one (author, seq) with its count, and
    the event stream carries one equivocation event (on main: 79,800 of them, and as many
    rows and log lines)."""
    from formation.api import state_models as sm
    from formation.api import state_routes as sr
    from formation.node.state import wire

    events = client.events(since=0, topic="state")
    await client.call(sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    await client.call(sr.state_append, sm.AppendRequest(
        kind="node.admit", payload={"node": LIAR.public_key_hex, "roles": ["member"]}))
    r = node.parts.state.require_store().replica
    forks = [craft(LIAR, r, "node.record", {"name": f"f{i}"}, network=r.network)
             for i in range(400)]
    pushed = await client.call(sr.state_sync_push, sm.OpBatch(ops=wire.pack(forks), count=400))
    assert pushed.accepted == 400
    records, equivocations = 0, []
    async for event in events:
        if event.kind == "node.record":
            records += 1
        elif event.kind == "equivocation":
            equivocations.append(event.data)
        if records == 400:
            break
    assert len(equivocations) == 1 and equivocations[0]["forks"] == 2
    status = await client.call(sr.state_status)
    [entry] = status.equivocations
    assert (entry.author, entry.forks) == (LIAR.public_key_hex, 400)
    assert [(e.author, e.forks, e.seqs_listed) for e in status.equivocators] == [
        (LIAR.public_key_hex, 399, 1)]
