"""The SQLite file: the op log, heads, contexts, equivocation evidence and the views.

`contexts` holds contexts whole (every member), as files written before contexts were stored
by frontier did; `context_frontiers` and `authority_past` replace it (contexts_db.py migrates).

WAL mode with synchronous=FULL: every batch is one transaction, and COMMIT returns only after the
WAL is fsynced. An op is acknowledged (returned by append, reported accepted by ingest) only after
that COMMIT, so it survives `kill -9` (the WAL is in the file system before we answer) and power
loss. NORMAL would survive kill -9 too but could lose the last commits on power loss."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from formation.node.state import evidence, tenant_usage, views

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ops (
  ord INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, author BLOB NOT NULL, seq INTEGER NOT NULL,
  hlc_ms INTEGER NOT NULL, hlc_c INTEGER NOT NULL, kind TEXT NOT NULL, ctx INTEGER NOT NULL,
  raw BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS ops_author_seq ON ops (author, seq);
CREATE TABLE IF NOT EXISTS heads (id BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS contexts (ctx INTEGER PRIMARY KEY, members BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS context_frontiers (ctx INTEGER PRIMARY KEY, frontier BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS authority_past (id BLOB PRIMARY KEY, past INTEGER) WITHOUT ROWID;
"""


def connect(path: Path, durable: bool = True) -> sqlite3.Connection:
    """Opens (creating) the database. The connection is used by one thread at a time.
    `durable=False` (tests of logic, never a node) skips fsync."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=OFF")
    db.execute("PRAGMA foreign_keys=OFF")
    db.execute("PRAGMA cache_size=-16000")
    db.executescript(SCHEMA + evidence.SCHEMA + views.SCHEMA + tenant_usage.SCHEMA)
    evidence.migrate(db)
    tenant_usage.backfill(db)
    return db


def get_meta(db: sqlite3.Connection, key: str) -> bytes | None:
    row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return row[0] if row else None


def set_meta(db: sqlite3.Connection, key: str, value: bytes) -> None:
    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


def environmental(exc: BaseException) -> bool:
    """SQLite failing for reasons of its own (disk full, I/O, a locked or corrupt file), not
    because of what an op holds (a constraint it breaks, a value it cannot store): such an
    error is no verdict on the op, and the op must not be refused for it."""
    return isinstance(exc, sqlite3.DatabaseError | MemoryError) and not isinstance(
        exc, sqlite3.IntegrityError | sqlite3.DataError)
