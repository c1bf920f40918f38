"""Structured logs on stderr. Text is logfmt (journald keeps it as one line and `grep` reads it);
JSON is one object per line. Extra fields come from `logger.info(msg, extra={"fields": {...}})`."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from formation.node.log_limits import RepeatLimit


def _fields(record: logging.LogRecord) -> dict:
    return dict(getattr(record, "fields", {}) or {})


def _quote(value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in ' ="\n'):
        return json.dumps(text)
    return text


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = {
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            parts["error"] = repr(record.exc_info[1])
        return " ".join(f"{key}={_quote(value)}" for key, value in parts.items())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            doc["error"] = repr(record.exc_info[1])
        return json.dumps(doc, default=str)


# Libraries whose warnings the node's log carries too, through the same handler: asyncio reports
# failing accept() calls (descriptors run out) there, several a second with a traceback each.
LIBRARY_LOGGERS = ("asyncio", "aiohttp")


def setup_logging(level: str = "info", fmt: str = "text", stream=None) -> None:
    """The node's log: one handler, whose repeated lines are rate-limited (`log_limits`)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    handler.addFilter(RepeatLimit(handler.handle))
    root = logging.getLogger("formation")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    for name in LIBRARY_LOGGERS:
        library = logging.getLogger(name)
        library.handlers[:] = [handler]
        library.setLevel(logging.WARNING)
        library.propagate = False
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
