"""Which envelope ids were already handled: bounded by count and by age, so a flood of unique
messages costs bounded memory. Envelopes older than the window are refused on age anyway."""

from __future__ import annotations

import time
from collections import OrderedDict


class SeenIds:
    def __init__(self, window_s: float, max_entries: int = 65_536) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __contains__(self, envelope_id: str) -> bool:
        return envelope_id in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, envelope_id: str, now: float | None = None) -> bool:
        """Returns False when the id was already there."""
        now = time.monotonic() if now is None else now
        self._expire(now)
        if envelope_id in self._seen:
            return False
        self._seen[envelope_id] = now
        return True

    def _expire(self, now: float) -> None:
        while self._seen:
            oldest, stamp = next(iter(self._seen.items()))
            if stamp >= now - self.window_s and len(self._seen) < self.max_entries:
                return
            self._seen.pop(oldest)
