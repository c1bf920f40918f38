"""Throttling of guesses at the join door, and who is knocking.

The join handshake and the knock are the only routes that answer requests signed by any key, so
they are where an outsider can guess: invite token keys and proofs, networks, or knock with
throwaway keys. Each failed attempt (401 or 403) from one TCP address takes a token from that
address's bucket (`api.join_guesses` tokens, one back every `api.join_guess_every_s`); an
address with an empty bucket is answered 429 with Retry-After before its request is read or
checked. The buckets are kept for the most recent MAX_SOURCES addresses only, so a flood of
addresses costs bounded memory (an evicted address starts again with a full bucket).

The same middleware records each join request's TCP peer address in discovery's context
variable `KNOCK_SOURCE`, which the join handlers read for their per-address limit on pending
joins: it does not depend on how a handler is called."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection

from aiohttp import web

from formation.discovery.pending_joins import KNOCK_SOURCE
from formation.node.server import error_response

MAX_SOURCES = 4096
FAILED = frozenset({401, 403})

class GuessThrottle:
    """A token bucket per source address, for failed attempts only."""

    def __init__(self, burst: int, every_s: float, max_sources: int = MAX_SOURCES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.every_s = every_s
        self.max_sources = max_sources
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, source: str, now: float) -> float:
        found = self._buckets.get(source)
        if found is None:
            return float(self.burst)
        tokens, at = found
        return min(float(self.burst), tokens + (now - at) / self.every_s)

    def retry_after_s(self, source: str) -> float:
        """0 when `source` may try now, else how long until it may."""
        now = self._clock()
        tokens = self._tokens(source, now)
        return 0.0 if tokens >= 1 else (1 - tokens) * self.every_s

    def failed(self, source: str) -> None:
        now = self._clock()
        tokens = max(0.0, self._tokens(source, now) - 1)
        self._buckets[source] = (tokens, now)
        self._buckets.move_to_end(source)
        while len(self._buckets) > self.max_sources:
            self._buckets.popitem(last=False)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def guess_middleware(throttle: GuessThrottle, door: Collection[str]) -> Callable:
    """The outermost middleware: it sees the final status of every request (after the error
    middleware turned exceptions into responses). `door`: the paths that take any key."""

    @web.middleware
    async def guesses(request: web.Request, handler: Handler) -> web.StreamResponse:
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        source = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not source or request.path not in door or request.method != "POST":
            return await handler(request)
        wait = throttle.retry_after_s(source)
        if wait > 0:
            refused = error_response(429, "too_many_requests",
                                     f"too many failed join attempts from {source}: retry later")
            refused.headers["Retry-After"] = str(math.ceil(wait))
            return refused
        reset = KNOCK_SOURCE.set(source)
        try:
            response = await handler(request)
        finally:
            KNOCK_SOURCE.reset(reset)
        if response.status in FAILED:
            throttle.failed(source)
        if response.status == 429 and "Retry-After" not in response.headers:
            # a handler's own 429 (too many pending joins from one address): the error
            # middleware keeps no headers of its exceptions but Allow and Location
            response.headers["Retry-After"] = str(math.ceil(throttle.every_s))
        return response

    return guesses
