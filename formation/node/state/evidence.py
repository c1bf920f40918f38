"""Equivocation evidence. An author that signs two different ops with one sequence number is
equivocating (a correct node never does). Both ops stand — refusing one would make replicas
disagree depending on arrival order — and the pair is kept as evidence, shown in status."""

from __future__ import annotations

import logging
import sqlite3

from formation.node.state.op import Op

log = logging.getLogger(__name__)


def record(db: sqlite3.Connection, op: Op) -> list[tuple[bytes, int, bytes, bytes]]:
    """Records `op` against every stored op with its author and seq; returns new evidence."""
    found = []
    rows = db.execute("SELECT id FROM ops WHERE author=? AND seq=? AND id<>?",
                      (op.author, op.seq, op.id)).fetchall()
    for (other,) in rows:
        a, b = sorted((other, op.id))
        cur = db.execute("INSERT OR IGNORE INTO equivocations VALUES (?,?,?,?)",
                         (op.author, op.seq, a, b))
        if cur.rowcount:
            found.append((op.author, op.seq, a, b))
            log.warning("equivocation", extra={"fields": {
                "author": op.author.hex(), "seq": op.seq, "a": a.hex(), "b": b.hex()}})
    return found


def listing(db: sqlite3.Connection) -> list[dict]:
    rows = db.execute("SELECT author, seq, a, b FROM equivocations ORDER BY author, seq, a, b")
    return [{"author": a.hex(), "seq": s, "ops": [x.hex(), y.hex()]} for a, s, x, y in rows]
