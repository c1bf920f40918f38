"""The instance detail's migration line, from each migration event the node publishes."""

from __future__ import annotations

from formation.tui.migration_text import MIB, migration_text


def test_progress_says_sent_left_dirty_rate_and_downtime() -> None:
    line = migration_text("migration_progress", {
        "instance": "ab", "transferred_bytes": 64 * MIB, "remaining_bytes": 192 * MIB,
        "total_bytes": 256 * MIB, "dirty_rate_pps": 1200})
    assert line == ("migrating: 64.0 MiB sent (25%), 192.0 MiB left, guest dirtying 1200 "
                    "pages/s")
    done = migration_text("migration_progress", {"transferred_bytes": 1, "total_bytes": 0,
                                                 "downtime_ms": 41})
    assert done is not None and done.endswith("downtime 41 ms") and "%" not in done


def test_start_done_failure_and_other_events() -> None:
    assert migration_text("migration_started", {"to": "cd" * 32}) == (
        "migrating live to cdcdcdcdcdcd: starting")
    assert migration_text("migration_done", {}) == "migration done: the target runs the guest"
    failed = migration_text("migration_failed", {"reason": "connection refused"})
    assert failed == ("migration failed: connection refused (it keeps running where it was)")
    assert migration_text("status", {"state": "running"}) is None
