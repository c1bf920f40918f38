"""The pending-join list: bounded per address and in total, expiring after the last ask, and
read back from its file (a damaged file is an empty list and a warning, never a crash)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from manual_clock import ManualClock

from formation.discovery import pending_joins
from formation.discovery.pending_joins import PendingJoins, TooMany
from formation.identity import NodeIdentity


def key() -> str:
    return NodeIdentity.generate().public_key_hex


def joins(path: Path | None, clock: ManualClock, **limits) -> PendingJoins:
    return PendingJoins(path, limits.get("max_total", 4), limits.get("per_source", 2),
                        limits.get("expiry_s", 100.0), clock=clock)


def test_limits_per_source_and_total() -> None:
    clock = ManualClock(1_000_000.0)
    found = joins(None, clock)
    found.knock(key(), "a", "", "10.0.0.1")
    found.knock(key(), "b", "", "10.0.0.1")
    with pytest.raises(TooMany) as exc:
        found.knock(key(), "c", "", "10.0.0.1")
    assert exc.value.per_source and "10.0.0.1" in str(exc.value)
    found.knock(key(), "d", "", "10.0.0.2")
    found.knock(key(), "e", "", "10.0.0.3")
    with pytest.raises(TooMany) as exc:
        found.knock(key(), "f", "", "10.0.0.4")
    assert not exc.value.per_source
    assert len(found) == 4


def test_an_entry_expires_after_its_last_ask() -> None:
    clock = ManualClock(1_000_000.0)
    found = joins(None, clock)
    waiting, gone = key(), key()
    found.knock(waiting, "a", "", "s")
    found.knock(gone, "b", "", "s")
    clock.now += 60
    entry, new = found.knock(waiting, "a", "", "s")  # still asking
    assert not new and entry.asks == 2
    shown = entry.model(found.expiry_s)  # the API says when it goes: expiry after the last ask
    assert shown.expires_at == datetime.fromtimestamp(clock.now + 100.0, UTC).isoformat()
    clock.now += 60
    assert [e.key for e in found.entries()] == [waiting]


async def test_the_list_and_the_rejected_keys_are_read_back(short_tmp: Path) -> None:
    path = short_tmp / pending_joins.FILE_NAME
    clock = ManualClock(1_000_000.0)
    first = joins(path, clock)
    kept, refused = key(), key()
    first.knock(kept, "kept", "10.0.0.9:7170", "10.0.0.9")
    first.knock(refused, "refused", "", "10.0.0.8")
    first.reject(first.take(next(e.node for e in first.entries() if e.key == refused)).key)
    await first.save()
    assert path.stat().st_mode & 0o777 == 0o600
    second = joins(path, clock)
    [entry] = second.entries()
    assert (entry.key, entry.name, entry.address, entry.source) == (
        kept, "kept", "10.0.0.9:7170", "10.0.0.9")
    assert second.is_rejected(refused) and not second.is_rejected(kept)
    clock.now += 101
    assert joins(path, clock).entries() == [], "expired while the node was down"


async def test_an_unchanged_list_is_not_written_again(short_tmp: Path) -> None:
    path = short_tmp / pending_joins.FILE_NAME
    clock = ManualClock(1_000_000.0)
    found = joins(path, clock)
    who = key()
    found.knock(who, "a", "", "s")
    await found.save()
    path.unlink()
    found.knock(who, "a", "", "s")  # the same host asking again, seconds later
    await found.save()
    assert not path.exists()
    clock.now += pending_joins.RESAVE_AFTER_S
    found.knock(who, "a", "", "s")
    await found.save()
    assert path.exists(), "its last ask is written now and then, for the expiry"


@pytest.mark.parametrize("text", ["{not json", '{"version": 99, "pending": []}',
                                  '{"version": 1, "pending": [{"key": "zz"}]}', "[]"])
def test_a_damaged_file_is_an_empty_list(short_tmp: Path, text: str,
                                         caplog: pytest.LogCaptureFixture) -> None:
    path = short_tmp / pending_joins.FILE_NAME
    path.write_text(text)
    with caplog.at_level(logging.WARNING):
        assert len(joins(path, ManualClock(1_000_000.0))) == 0
    assert "cannot read the saved list" in caplog.text


def test_rejected_keys_are_bounded(short_tmp: Path) -> None:
    found = joins(None, ManualClock(1_000_000.0))
    for n in range(pending_joins.MAX_REJECTED + 10):
        found.reject(f"{n:064x}")
    assert not found.is_rejected(f"{0:064x}") and found.is_rejected(f"{9 + 1024:064x}")
    assert json.loads(found._document())["rejected"][0] == f"{10:064x}"
