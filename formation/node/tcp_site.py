"""The API's TCP listeners: every connection passes the connection gate, and a client that is
slow on purpose is cut off.

aiohttp waits for a request's headers and body as long as the client likes (its keep-alive timer,
an hour by default, is the only bound), so a client trickling a header byte now and then holds a
connection, and its descriptor, for good. Here, on TCP only (the unix socket's callers are local
and trusted by its file mode):

- headers: a request's headers must be complete within `header_timeout_s` of the connection (for
  its first request) or of the first byte of the request (for the next ones);
- body: the body within `body_timeout_s` of the headers;
- idle: a kept-alive connection without a request is closed after `idle_timeout_s` (aiohttp's
  own keep-alive timer, given that value).

Each cut is counted in `formation_api_connections_timed_out_total{phase}`. The handler class
reads two of aiohttp's RequestHandler attributes (`_waiter`, `_messages`): the tests of this
module fail if an aiohttp release changes them."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from prometheus_client import CollectorRegistry

from formation.config.settings import ApiSettings
from formation.node.connection_limits import ConnectionGate, raise_nofile_limit, total_cap

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timeouts:
    header_s: float = 10.0
    body_s: float = 60.0
    idle_s: float = 60.0


class GuardedHandler(RequestHandler):
    """An aiohttp RequestHandler that first asks the gate, then watches for slowness."""

    def __init__(self, server: web.Server, gate: ConnectionGate, timeouts: Timeouts,
                 **kwargs: Any) -> None:
        super().__init__(server, keepalive_timeout=timeouts.idle_s, **kwargs)
        self._gate = gate
        self._timeouts = timeouts
        self._peer: str | None = None
        self._late: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peername = transport.get_extra_info("peername")
        peer = str(peername[0]) if peername else ""
        if not self._gate.admit(peer):
            assert isinstance(transport, asyncio.Transport)
            transport.abort()  # no response, no log line: the gate counts and sums up
            return
        self._peer = peer
        super().connection_made(transport)
        self._expect("headers", self._timeouts.header_s, None)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._peer is None:  # refused at the gate: aiohttp never saw it
            return
        self._gate.release(self._peer)
        self._peer = None
        self._cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._peer is None:  # refused: aborted, nothing of it is parsed
            return
        idle = self._waiter is not None and not self._waiter.done()  # awaiting a request
        queued = len(self._messages)
        super().data_received(data)
        if self.transport is None:
            return
        if len(self._messages) > queued:  # the headers of a request are complete
            _, payload = self._messages[-1]
            if payload.is_eof():
                self._cancel()
            else:
                self._expect("body", self._timeouts.body_s, payload)
        elif idle and self._late is None:  # the first bytes of a request's headers
            self._expect("headers", self._timeouts.header_s, None)

    def _expect(self, phase: str, within_s: float, payload: Any) -> None:
        self._cancel()
        self._late = self._loop.call_later(within_s, self._too_slow, phase, payload)

    def _cancel(self) -> None:
        if self._late is not None:
            self._late.cancel()
            self._late = None

    def _too_slow(self, phase: str, payload: Any) -> None:
        self._late = None
        if self.transport is None:
            return
        if phase == "body" and payload.is_eof():
            return
        self._gate.timed_out.labels(phase).inc()
        log.debug("TCP connection too slow, closed", extra={"fields": {
            "phase": phase, "peer": self._peer}})
        self.force_close()
        self.transport.abort()


class GuardedTCPSite(web.TCPSite):
    """A TCPSite whose connections are GuardedHandlers sharing one gate. It serves the same
    application as the runner's other sites."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, gate: ConnectionGate,
                 timeouts: Timeouts, **kwargs: Any) -> None:
        super().__init__(runner, host, port, **kwargs)
        self._gate = gate
        self._timeouts = timeouts

    def _handler(self) -> GuardedHandler:
        server = self._runner.server
        assert server is not None
        # access_log=None as the node's runner has it: requests are logged by the server's
        # middleware, with their caller
        return GuardedHandler(server, self._gate, self._timeouts,
                              loop=asyncio.get_running_loop(), access_log=None)

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with the runner
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._handler, self._host, self._port, ssl=self._ssl_context, backlog=self._backlog,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port)
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port


class TcpGuard:
    """What every TCP listener of one node shares: the gate (so the caps are per node, not per
    listener) and the timeouts, from the `api` settings. Creating it raises the process's soft
    open-file limit to the hard one, then derives the total cap from it."""

    def __init__(self, api: ApiSettings, registry: CollectorRegistry | None = None) -> None:
        self.nofile = raise_nofile_limit()
        self.gate = ConnectionGate(
            total_cap(api.max_connections, self.nofile, api.reserved_fds),
            api.max_connections_per_peer, registry)
        self.timeouts = Timeouts(api.header_timeout_s, api.body_timeout_s, api.idle_timeout_s)
        log.debug("TCP connection limits", extra={"fields": {
            "open_files": self.nofile, "total": self.gate.total, "per_peer": self.gate.per_peer}})

    def site(self, runner: web.BaseRunner, host: str, port: int) -> GuardedTCPSite:
        return GuardedTCPSite(runner, host, port, self.gate, self.timeouts)

    def close(self) -> None:
        self.gate.close()
