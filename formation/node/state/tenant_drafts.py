"""The drafts a node handed out to account keys, so that it relays only ops it drafted.

A tenant signs the body the node drafted: parents = the node's heads, HLC = a tick of its
clock, seq = one past the tenant's last op here. Relaying only those bodies means a tenant
cannot, through an honest node, choose old parents (to sign "before" its own instances and pass
its quota twice, or before its account's removal), stamp its own time, or fork its chain (two
bodies with one seq: the second is refused once the first is written). What a hostile member
pushes straight to its peers meets the rules alone (docs/protocol.md, "Tenants").

Bounded: at most PER_KEY outstanding drafts per key (the oldest forgotten first), KEYS keys (the
least recently drafting forgotten first), each for TTL_S seconds."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable

PER_KEY = 8
KEYS = 4096
TTL_S = 120.0


class DraftBook:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._by_key: OrderedDict[str, OrderedDict[bytes, float]] = OrderedDict()

    def issued(self, key: str, body: bytes) -> None:
        book = self._by_key.pop(key, None) or OrderedDict()
        book[_digest(body)] = self._clock() + TTL_S
        while len(book) > PER_KEY:
            book.popitem(last=False)
        self._by_key[key] = book
        while len(self._by_key) > KEYS:
            self._by_key.popitem(last=False)

    def take(self, key: str, body: bytes) -> bool:
        """True (once) when this node drafted `body` for `key` in the last TTL_S seconds."""
        book = self._by_key.get(key)
        if book is None:
            return False
        expires = book.pop(_digest(body), None)
        return expires is not None and expires >= self._clock()

    def __len__(self) -> int:
        return sum(len(b) for b in self._by_key.values())


def _digest(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=16).digest()
