"""Repeated log lines are rate-limited per message, with a line saying how many were dropped;
the node's log handler does it for its own loggers and for asyncio's accept() errors."""

from __future__ import annotations

import asyncio
import io
import logging

import pytest

from formation.node import log_limits
from formation.node.log_limits import RepeatLimit
from formation.node.logs import LIBRARY_LOGGERS, setup_logging


@pytest.fixture
def node_log():
    """The node's logging set up on a buffer; the loggers as they were afterwards."""
    names = ("formation", *LIBRARY_LOGGERS)
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level,
                 logging.getLogger(n).propagate) for n in names}
    out = io.StringIO()
    setup_logging("info", "text", stream=out)
    yield out
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:], logger.propagate = handlers, propagate
        logger.setLevel(level)


def test_a_flood_of_one_message_logs_a_burst_then_a_summary(node_log) -> None:
    log = logging.getLogger("formation.node.server")
    for n in range(1000):
        log.warning("request refused", extra={"fields": {"remote": f"10.0.{n // 250}.{n % 250}"}})
    log.warning("something else")
    lines = node_log.getvalue().splitlines()
    refused = [line for line in lines if 'msg="request refused"' in line]
    assert len(refused) == log_limits.BURST
    assert any("something else" in line for line in lines), "other messages still pass"
    handler = logging.getLogger("formation").handlers[0]
    limit = next(f for f in handler.filters if isinstance(f, RepeatLimit))
    limit.flush()
    summary = node_log.getvalue().splitlines()[-1]
    assert "suppressed 980 repeats of: request refused" in summary
    assert "suppressed=980" in summary


def test_the_audit_trail_of_authenticated_callers_is_never_suppressed(node_log) -> None:
    log = logging.getLogger("formation.node.server")
    for n in range(100):
        log.info("request", extra={"fields": {"caller": f"key:{n:064x}", "method": "POST"}})
        log.info("request", extra={"fields": {"caller": "unix:pid=1,uid=0", "method": "POST"}})
        log.info("request", extra={"fields": {"caller": "tcp:10.0.0.1 unsigned"}})
    lines = node_log.getvalue().splitlines()
    assert sum("caller=key:" in line for line in lines) == 100
    assert sum('caller="unix:' in line for line in lines) == 100
    assert sum("unsigned" in line for line in lines) == log_limits.BURST


def test_asyncio_accept_errors_go_through_the_same_limit(node_log) -> None:
    log = logging.getLogger("asyncio")
    error = OSError(24, "Too many open files")
    for n in range(200):
        log.error(f"socket.accept() out of system resource\nsocket: <fd={n}>",
                  exc_info=(OSError, error, None))
    found = node_log.getvalue().count("out of system resource")
    assert found == log_limits.BURST


def test_the_summary_comes_at_the_end_of_the_window_on_a_loop() -> None:
    out: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: out.append(record.getMessage())  # type: ignore[method-assign]
    handler.addFilter(RepeatLimit(handler.handle, burst=2, window_s=0.2))
    log = logging.getLogger("test_log_limits.window")
    log.addHandler(handler)
    log.propagate = False

    async def flood() -> None:
        for _ in range(10):
            log.warning("again")
        await asyncio.sleep(0.5)  # no further line of that key: the timer writes the summary

    try:
        asyncio.run(flood())
    finally:
        log.removeHandler(handler)
    assert out == ["again", "again", "suppressed 8 repeats of: again"]


def test_keys_are_bounded() -> None:
    handler = logging.Handler()
    handler.emit = lambda record: None  # type: ignore[method-assign]
    limit = RepeatLimit(handler.handle, burst=1)
    for n in range(log_limits.MAX_KEYS + 100):
        limit.filter(logging.LogRecord("x", logging.INFO, "", 0, f"message {n}", None, None))
    assert len(limit._keys) == log_limits.MAX_KEYS
