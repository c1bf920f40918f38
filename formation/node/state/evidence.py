"""Equivocation evidence. An author that signs two different ops with one sequence number is
equivocating (a correct node never does). Every fork stands — refusing one would make replicas
disagree depending on arrival order — and the forks are the evidence, shown in status.

The forks themselves are in the op log already, so the evidence is a count per (author, seq),
not a row per pair of forks: a member that signs n forks of one seq costs n ops and one row,
not n²/2 rows (a push of under 1 MB once grew the database and the log by hundreds of MB).
At most MAX_SEQS_PER_AUTHOR sequence numbers are listed per author; beyond that only the
author's total grows. Each listed (author, seq) is logged and announced once, when its second
op arrives, and the log lines are rate-limited besides."""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any

from formation.node.state.op import Op

log = logging.getLogger(__name__)

MAX_SEQS_PER_AUTHOR = 64
OPS_SHOWN = 4  # op ids listed per (author, seq): enough to fetch and check the evidence
LIST_MAX = 200  # (author, seq) entries in one listing
LOG_BURST = 20  # log lines at once, then LOG_PER_MINUTE
LOG_PER_MINUTE = 6

# A row of the ops table as the replica writes it: (id, author, seq, hlc_ms, hlc_c, kind, ctx, raw).
OpRow = tuple[bytes, bytes, int, int, int, str, int, bytes]

SCHEMA = """
CREATE TABLE IF NOT EXISTS forks (
  author BLOB NOT NULL, seq INTEGER NOT NULL, ops INTEGER NOT NULL,
  PRIMARY KEY (author, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS equivocators (
  author BLOB PRIMARY KEY, forks INTEGER NOT NULL) WITHOUT ROWID;
"""


class LogLimiter:
    """A token bucket for log lines: a burst, then a steady trickle; it counts what it held
    back so the next line that passes can say so."""

    def __init__(self, burst: int = LOG_BURST, per_minute: float = LOG_PER_MINUTE) -> None:
        self.burst, self.rate = burst, per_minute / 60.0
        self.tokens, self.at, self.held = float(burst), time.monotonic(), 0

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            self.held += 1
            return False
        self.tokens -= 1
        return True


def migrate(db: sqlite3.Connection) -> None:
    """Databases of older nodes kept a row per pair of forks (`equivocations`): recount the
    evidence from the log once and drop the pairs."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='equivocations'"
                  ).fetchone() is None:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("DELETE FROM forks")
        db.execute("DELETE FROM equivocators")
        seen: dict[bytes, int] = {}
        for author, seq, ops in db.execute(
                "SELECT author, seq, COUNT(*) FROM ops GROUP BY author, seq HAVING COUNT(*) > 1"
                ).fetchall():
            if seen.get(author, 0) < MAX_SEQS_PER_AUTHOR:
                db.execute("INSERT INTO forks VALUES (?,?,?)", (author, seq, ops))
                seen[author] = seen.get(author, 0) + 1
            db.execute("INSERT INTO equivocators VALUES (?, ?) ON CONFLICT (author) "
                       "DO UPDATE SET forks = forks + excluded.forks", (author, ops - 1))
        db.execute("DROP TABLE equivocations")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def record(db: sqlite3.Connection, op: Op, unflushed: list[OpRow],
           limiter: LogLimiter) -> dict[str, Any] | None:
    """Counts `op`, an accepted op whose author already has an op with its seq. Returns the
    evidence to announce when this is the first fork of that (author, seq) listed, else None.
    `unflushed`: op rows of the batch not yet written ((id, author, seq, ...)), where the
    other fork may be."""
    author, seq = op.author, op.seq
    db.execute("INSERT INTO equivocators VALUES (?, 1) ON CONFLICT (author) "
               "DO UPDATE SET forks = forks + 1", (author,))
    if db.execute("UPDATE forks SET ops = ops + 1 WHERE author=? AND seq=?",
                  (author, seq)).rowcount:
        return None
    listed = db.execute("SELECT COUNT(*) FROM forks WHERE author=?", (author,)).fetchone()[0]
    if listed >= MAX_SEQS_PER_AUTHOR:
        if limiter.allow():
            log.warning("equivocation beyond the listed evidence; counted only", extra={
                "fields": {"author": author.hex(), "seq": seq}})
        return None
    db.execute("INSERT INTO forks VALUES (?, ?, 2)", (author, seq))
    row = db.execute("SELECT id FROM ops WHERE author=? AND seq=? LIMIT 1",
                     (author, seq)).fetchone()
    other = row[0] if row else next(
        (r[0] for r in unflushed if r[1] == author and r[2] == seq and r[0] != op.id), None)
    ids = sorted(i.hex() for i in (other, op.id) if i is not None)
    if limiter.allow():
        held, limiter.held = limiter.held, 0
        log.warning("equivocation", extra={"fields": {
            "author": author.hex(), "seq": seq, "ops": ids, "held_back": held}})
    return {"author": author.hex(), "seq": seq, "ops": ids, "forks": 2}


def count(db: sqlite3.Connection) -> int:
    """Ops accepted whose (author, seq) was taken already: every fork beyond the first."""
    total: int = db.execute("SELECT COALESCE(SUM(forks), 0) FROM equivocators").fetchone()[0]
    return total


def listing(db: sqlite3.Connection, limit: int = LIST_MAX) -> list[dict[str, Any]]:
    """The evidence, by (author, seq): how many ops share it and the first OPS_SHOWN ids."""
    out = []
    for author, seq, ops in db.execute(
            "SELECT author, seq, ops FROM forks ORDER BY author, seq LIMIT ?", (limit,)
            ).fetchall():
        ids = [i.hex() for (i,) in db.execute(
            "SELECT id FROM ops WHERE author=? AND seq=? ORDER BY id LIMIT ?",
            (author, seq, OPS_SHOWN))]
        out.append({"author": author.hex(), "seq": seq, "ops": ids, "forks": ops})
    return out


def authors(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """Per equivocating author: every fork counted, and how many seqs the listing holds."""
    return [{"author": a.hex(), "forks": forks, "seqs_listed": listed}
            for a, forks, listed in db.execute(
                "SELECT e.author, e.forks, (SELECT COUNT(*) FROM forks f WHERE f.author=e.author)"
                " FROM equivocators e ORDER BY e.author")]
