"""Repeated log lines, rate-limited: a flood (of connections, of bad requests, of accept()
errors when descriptors run out) must not grow the log by megabytes a second and bury what
matters in it.

A line's key is its logger, level and message template (the first line of it: asyncio puts
details on the next ones), not its fields, so "request refused" from a thousand addresses is one
key. The audit trail is never suppressed: a line whose `caller` field names an authenticated
caller (a signing key, `key:...`, or a unix socket peer, `unix:...`) always passes; anonymous
callers' lines (`tcp:ADDRESS unsigned`) are limited like any other.

Each key may log `burst` lines per `window_s`; beyond that its lines are counted, and when the
window ends one line says how many were suppressed. That line is written at the window's end
when a record was logged on an event loop (a timer on it), else with the key's next line."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

BURST = 20
WINDOW_S = 10.0
MAX_KEYS = 4096
AUDITED = ("key:", "unix:")  # callers whose requests' lines are the audit trail


class _Key:
    __slots__ = ("first", "logged", "started", "suppressed", "timer")

    def __init__(self, now: float, first: logging.LogRecord) -> None:
        self.started = now
        self.logged = 0
        self.suppressed = 0
        self.first = first
        self.timer: asyncio.TimerHandle | None = None


class RepeatLimit(logging.Filter):
    """A handler filter. `emit` writes the summary lines (the handler's own `handle`)."""

    def __init__(self, emit: Callable[[logging.LogRecord], object], burst: int = BURST,
                 window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.emit = emit
        self.burst = burst
        self.window_s = window_s
        self._clock = clock
        self._keys: dict[tuple, _Key] = {}

    @staticmethod
    def key_of(record: logging.LogRecord) -> tuple:
        return record.name, record.levelno, str(record.msg).split("\n", 1)[0]

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "suppressed_summary", False) or audited(record):
            return True
        now = self._clock()
        key = self.key_of(record)
        found = self._keys.get(key)
        if found is not None and now - found.started >= self.window_s:
            self._close(key)
            found = None
        if found is None:
            if len(self._keys) >= MAX_KEYS:
                self._close(next(iter(self._keys)))
            found = self._keys[key] = _Key(now, record)
        if found.logged < self.burst:
            found.logged += 1
            return True
        found.suppressed += 1
        if found.timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                found.timer = loop.call_later(max(0.0, found.started + self.window_s - now),
                                              self._close, key)
        return False

    def _close(self, key: tuple) -> None:
        """Ends a key's window, writing its summary line if it suppressed any."""
        found = self._keys.pop(key, None)
        if found is None:
            return
        if found.timer is not None:
            found.timer.cancel()
        if found.suppressed:
            self.emit(summary(found.first, found.suppressed, self.window_s))

    def flush(self) -> None:
        for key in list(self._keys):
            self._close(key)


def audited(record: logging.LogRecord) -> bool:
    fields = getattr(record, "fields", None)
    return isinstance(fields, dict) and str(fields.get("caller", "")).startswith(AUDITED)


def summary(first: logging.LogRecord, suppressed: int, window_s: float) -> logging.LogRecord:
    record = logging.LogRecord(
        first.name, first.levelno, first.pathname, first.lineno,
        "suppressed %d repeats of: %s", (suppressed, first.getMessage().split("\n", 1)[0]), None)
    record.fields = {"suppressed": suppressed, "window_s": window_s}
    record.suppressed_summary = True
    return record
