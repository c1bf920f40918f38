"""The hosts that asked to join without a token, waiting for an admin: bounded, expiring, and
kept on disk.

Anyone can knock with a throwaway key, so the list is an outsider-fillable buffer: it holds at
most `max_total` hosts, at most `per_source` from one TCP address, and a host is dropped
`expiry_s` after it last asked (a waiting joiner asks every few seconds, so only the abandoned
ones go). It is written to a JSON file in the data directory (atomically: a temporary file
renamed over the old one) when a host is added, taken or dropped, so an admin's restart does not
lose who is waiting; the keys an admin rejected are kept with it (the most recent MAX_REJECTED).

The address a knock comes from is set for each join request by the node's server
(`KNOCK_SOURCE`, a context variable; discovery does not import the node), whatever the handler's
signature."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from formation.api import join_models as jm
from formation.fileutil import write_text_atomically
from formation.identity import node_id_for

log = logging.getLogger(__name__)

FILE_NAME = "pending-joins.json"
VERSION = 1
MAX_REJECTED = 1024
RESAVE_AFTER_S = 60.0  # a waiting host's last ask is written at most this often

KNOCK_SOURCE: contextvars.ContextVar[str] = contextvars.ContextVar("formation_knock_source",
                                                                   default="")


def knock_source() -> str:
    """The TCP peer address of the join request being handled; "" when none was set."""
    return KNOCK_SOURCE.get()


class TooMany(Exception):
    """The list is full, for everyone (`per_source` False) or for this address."""

    def __init__(self, message: str, per_source: bool) -> None:
        super().__init__(message)
        self.per_source = per_source


@dataclass
class Pending:
    key: str
    name: str
    address: str
    source: str = ""
    since: float = field(default_factory=time.time)
    last: float = field(default_factory=time.time)
    asks: int = 1
    saved: float = field(default=0.0, compare=False)

    @property
    def node(self) -> str:
        return node_id_for(bytes.fromhex(self.key))

    def model(self, expiry_s: float) -> jm.PendingJoin:
        """As the API shows it; it expires `expiry_s` after its last ask unless asked again."""
        return jm.PendingJoin(id=self.node, key=self.key, name=self.name, address=self.address,
                              since=datetime.fromtimestamp(self.since, UTC).isoformat(),
                              asks=self.asks, expires_at=datetime.fromtimestamp(
                                  self.last + expiry_s, UTC).isoformat())


class PendingJoins:
    def __init__(self, path: Path | None, max_total: int, per_source: int, expiry_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.max_total = max_total
        self.per_source = per_source
        self.expiry_s = expiry_s
        self._clock = clock
        self._pending: dict[str, Pending] = {}  # by node id
        self._rejected: dict[str, None] = {}  # keys, oldest first
        self._dirty = False
        self._write_lock = asyncio.Lock()
        if path is not None:
            self._load(path)

    # reading and writing -----------------------------------------------------------------
    def _load(self, path: Path) -> None:
        try:
            doc = json.loads(path.read_text())
            if doc.get("version") != VERSION:
                raise ValueError(f"version {doc.get('version')!r}, expected {VERSION}")
            entries = [Pending(**{k: e[k] for k in ("key", "name", "address", "source", "since",
                                                     "last", "asks")})
                       for e in doc["pending"]]
            rejected = [str(k) for k in doc.get("rejected", [])]
            for entry in entries:
                bytes.fromhex(entry.key)
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("pending joins: cannot read the saved list; starting empty",
                        extra={"fields": {"file": str(path), "error": str(exc)}})
            return
        now = self._clock()
        for entry in entries[-self.max_total:]:
            entry.saved = now
            self._pending[entry.node] = entry
        self._rejected = dict.fromkeys(rejected[-MAX_REJECTED:])
        self._expire()

    def _document(self) -> str:
        entries = []
        for entry in self._pending.values():
            entry.saved = self._clock()
            doc = asdict(entry)
            doc.pop("saved")
            entries.append(doc)
        return json.dumps({"version": VERSION, "pending": entries,
                           "rejected": list(self._rejected)}, indent=1)

    async def save(self) -> None:
        """Writes the list if it changed since it was last written. The snapshot is taken under
        the lock, so an older one never replaces a newer one."""
        if self.path is None or not self._dirty:
            return
        async with self._write_lock:
            if not self._dirty:
                return
            self._dirty = False
            text = self._document()
            try:
                await asyncio.to_thread(write_text_atomically, self.path, text, 0o600)
            except OSError as exc:
                self._dirty = True
                log.warning("pending joins: cannot save the list",
                            extra={"fields": {"file": str(self.path), "error": str(exc)}})

    # the list ------------------------------------------------------------------------------
    def _expire(self) -> None:
        horizon = self._clock() - self.expiry_s
        for node in [n for n, e in self._pending.items() if e.last < horizon]:
            dropped = self._pending.pop(node)
            self._dirty = True
            log.info("pending join expired", extra={"fields": {
                "node": node, "name": dropped.name, "source": dropped.source}})

    def __len__(self) -> int:
        return len(self._pending)

    def entries(self) -> list[Pending]:
        self._expire()
        return list(self._pending.values())

    def knock(self, key: str, name: str, address: str, source: str) -> tuple[Pending, bool]:
        """Notes a host's ask: (its entry, whether it is new). Raises TooMany when a new host
        would exceed a limit."""
        self._expire()
        now = self._clock()
        node = node_id_for(bytes.fromhex(key))
        found = self._pending.get(node)
        if found is not None:
            moved = (found.name, found.address) != (name, address)
            if moved or now - found.saved >= RESAVE_AFTER_S:
                self._dirty = True
            found.asks += 1
            found.name, found.address, found.last = name, address, now
            return found, False
        if len(self._pending) >= self.max_total:
            raise TooMany("Too many pending joins", per_source=False)
        if source and sum(e.source == source for e in self._pending.values()) >= self.per_source:
            raise TooMany(f"Too many pending joins from {source} (at most {self.per_source})",
                          per_source=True)
        found = self._pending[node] = Pending(key, name, address, source, now, now)
        self._dirty = True
        return found, True

    def take(self, node: str) -> Pending | None:
        found = self._pending.pop(node, None)
        if found is not None:
            self._dirty = True
        return found

    def put_back(self, entry: Pending) -> None:
        self._pending[entry.node] = entry
        self._dirty = True

    def reject(self, key: str) -> None:
        self._rejected.pop(key, None)
        self._rejected[key] = None
        while len(self._rejected) > MAX_REJECTED:
            del self._rejected[next(iter(self._rejected))]
        self._dirty = True

    def is_rejected(self, key: str) -> bool:
        return key in self._rejected
