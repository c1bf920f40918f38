"""bench/support/serial_watch.py, which bench/vm.py times serial logs with: it follows the
directories made under its root (the node makes one per instance), sees a log's first byte and
a marker split across two writes, and says when a log had bytes before it was watched."""

from __future__ import annotations

from pathlib import Path

import pytest
from waiting import until_sync

from bench.support.serial_watch import SerialWatch


def test_first_byte_and_a_marker_split_across_writes(tmp_path: Path) -> None:
    with SerialWatch(tmp_path, "serial.log", ("GUEST-UP",)) as watch:
        workdir = tmp_path / "instance"
        workdir.mkdir()
        until_sync(lambda: watch.watches(workdir), 10, what="the new directory watched")
        log_path = workdir / "serial.log"
        with log_path.open("ab", buffering=0) as serial:
            serial.write(b"booting\nGUEST")
            first = watch.wait_first_byte(log_path, 10)
            serial.write(b"-UP\n")
            log = watch.wait_marker("GUEST-UP", 10, log_path)
    assert first.first_byte is not None
    assert first.first_byte <= log.markers["GUEST-UP"]
    assert not log.missed_start


def test_a_log_written_before_the_watch_is_flagged(tmp_path: Path) -> None:
    (tmp_path / "serial.log").write_bytes(b"early GUEST-UP\n")
    with SerialWatch(tmp_path, "serial.log", ("GUEST-UP",)) as watch:
        log = watch.wait_marker("GUEST-UP", 10)
    assert log.missed_start


def test_no_marker_times_out(tmp_path: Path) -> None:
    with SerialWatch(tmp_path, "serial.log", ("GUEST-UP",)) as watch, \
            pytest.raises(TimeoutError):
        (tmp_path / "serial.log").write_bytes(b"nothing yet\n")
        watch.wait_marker("GUEST-UP", 0.3)
