"""A bounded in-memory ring of the node's log records, so the console's logs screen can show
what the node said recently without reading files (the service may log to journald or stderr)."""

from __future__ import annotations

import logging
from collections import deque
from datetime import UTC, datetime

from formation.api.console_models import LogRecord

KEEP = 1000


class LogRing(logging.Handler):
    """Attached to the `formation` logger while the node runs. Several node services in one
    process (tests, the lab) each see every record of the process: the logger is global."""

    def __init__(self, keep: int = KEEP, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.records: deque[LogRecord] = deque(maxlen=keep)
        self.seq = 0

    @property
    def dropped(self) -> int:
        return max(self.seq - len(self.records), 0)

    def emit(self, record: logging.LogRecord) -> None:
        self.seq += 1
        fields = {k: str(v) for k, v in (getattr(record, "fields", None) or {}).items()}
        if record.exc_info and record.exc_info[1] is not None:
            fields["error"] = repr(record.exc_info[1])
        self.records.append(LogRecord(
            seq=self.seq, time=datetime.fromtimestamp(record.created, UTC),
            level=record.levelname.lower(), logger=record.name,
            message=record.getMessage(), fields=fields,
        ))

    def since(self, seq: int | None, limit: int) -> list[LogRecord]:
        found = [r for r in self.records if seq is None or r.seq > seq]
        return found[-limit:]

    def attach(self, logger_name: str = "formation") -> None:
        logger = logging.getLogger(logger_name)
        if logger.level == logging.NOTSET or logger.level > self.level:
            logger.setLevel(self.level)
        logger.addHandler(self)

    def detach(self, logger_name: str = "formation") -> None:
        logging.getLogger(logger_name).removeHandler(self)
