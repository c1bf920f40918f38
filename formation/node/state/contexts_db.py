"""Contexts on disk: each by its frontier (contexts.py), and each authority op's past context.

The tables are made by db.py. A database written before contexts were stored by frontier
holds them whole in `contexts` (every member's id); `migrate` turns those into frontiers once,
in one transaction, keeping the context ids the ops table refers to. The old table is then
emptied (older code does not read this format)."""

from __future__ import annotations

import sqlite3

from formation.node.state import db as dbm
from formation.node.state.authority import AUTHORITY_KINDS
from formation.node.state.contexts import ContextCache
from formation.node.state.op import decode

FORMAT_KEY = "contexts_format"
FORMAT = b"frontier-1"
_KINDS = tuple(sorted(AUTHORITY_KINDS))


def _split(blob: bytes) -> frozenset[bytes]:
    return frozenset(blob[i:i + 32] for i in range(0, len(blob), 32))


def load(db: sqlite3.Connection) -> ContextCache:
    """The contexts and authority ops of the log (migrating an older file first)."""
    if dbm.get_meta(db, FORMAT_KEY) != FORMAT:
        migrate(db)
    cache = ContextCache()
    for ctx_id, frontier in db.execute("SELECT ctx, frontier FROM context_frontiers"):
        cache.load(ctx_id, _split(frontier))
    pasts: dict[bytes, int | None] = dict(db.execute("SELECT id, past FROM authority_past"))
    marks = ",".join("?" * len(_KINDS))
    for (raw,) in db.execute(f"SELECT raw FROM ops WHERE kind IN ({marks}) ORDER BY ord",
                             _KINDS):
        op = decode(raw)
        cache.add_authority_op(op, pasts[op.id])
    return cache


def write_new(db: sqlite3.Connection, cache: ContextCache, written: tuple[int, int]
              ) -> tuple[int, int]:
    """Writes the contexts and authority ops made since `written` (counts of each list
    written before, within this batch); returns the new counts."""
    contexts, authority = written
    fresh = cache.new_contexts
    if contexts < len(fresh):
        db.executemany("INSERT OR IGNORE INTO context_frontiers VALUES (?, ?)",
                       [(c, b"".join(sorted(f))) for c, f in fresh[contexts:]])
    pasts = cache.new_authority
    if authority < len(pasts):
        db.executemany("INSERT OR IGNORE INTO authority_past VALUES (?, ?)", pasts[authority:])
    return len(fresh), len(pasts)


def migrate(db: sqlite3.Connection) -> None:
    """Whole contexts -> frontiers. In a down-set S an op is not maximal exactly when it is a
    predecessor (a maximal op of the past) of another op of S, so frontier(S) = S minus the
    predecessors of its members, computed in the log's order (a causal order)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        whole = {c: _split(m) for c, m in db.execute("SELECT ctx, members FROM contexts")}
        preds: dict[bytes, frozenset[bytes]] = {}

        def frontier(members: frozenset[bytes]) -> frozenset[bytes]:
            below: set[bytes] = set()
            for m in members:
                below.update(preds.get(m, ()))
            return members - below

        marks = ",".join("?" * len(_KINDS))
        rows = db.execute(f"SELECT id, ctx FROM ops WHERE kind IN ({marks}) ORDER BY ord",
                          _KINDS).fetchall()
        for op_id, ctx in rows:
            preds[op_id] = frontier(whole[ctx] - {op_id})
        ids: dict[frozenset[bytes], int] = {}
        for ctx_id, members in whole.items():
            ids[frontier(members)] = ctx_id
        top = max(whole, default=0)
        for op_id, _ctx in rows:
            past = preds[op_id]
            if past and past not in ids:
                top += 1
                ids[past] = top
            db.execute("INSERT OR REPLACE INTO authority_past VALUES (?, ?)",
                       (op_id, ids[past] if past else None))
        db.executemany("INSERT OR REPLACE INTO context_frontiers VALUES (?, ?)",
                       [(c, b"".join(sorted(f))) for f, c in ids.items()])
        db.execute("DELETE FROM contexts")
        dbm.set_meta(db, FORMAT_KEY, FORMAT)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
