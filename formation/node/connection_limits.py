"""Admission of TCP connections: how many one peer address and all of them together may hold.

Each idle connection costs the node a file descriptor. Without a cap, about a thousand idle
connections from anyone exhaust the default limit of 1024; then accept() fails on the unix socket
too (the CLI and the console stop working), and so does every file the node opens. So the total
stays below the process's open-file limit, minus descriptors kept for the unix socket and the
node's own files, and one address may hold only a share of it. A connection over a cap is closed
at once, counted in the metrics, and summed up in one log line per interval (never one line per
connection: a flood would grow the log by megabytes a second)."""

from __future__ import annotations

import asyncio
import logging
import resource

from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger(__name__)

SUMMARY_EVERY_S = 10.0
# RLIM_INFINITY is no number of descriptors the kernel allows (fs.nr_open caps it).
NOFILE_CEILING = 1 << 20


def raise_nofile_limit() -> int:
    """Raises the soft open-file limit to the hard one (systemd starts services at a soft 1024
    whatever LimitNOFILE's hard value; Python never raises it) and returns the soft limit now in
    force. A refusal leaves the limit as it was."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = NOFILE_CEILING if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        for want in (target, NOFILE_CEILING):  # nr_open may be below an infinite hard limit
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, target), hard))
                break
            except (ValueError, OSError):
                continue
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return NOFILE_CEILING if soft == resource.RLIM_INFINITY else soft


def total_cap(configured: int, nofile: int, reserved: int) -> int:
    """TCP connections the node admits at once: the configured number, but never so many that
    the descriptors kept back (`reserved`, at most a quarter of the limit) could be used up."""
    keep = min(reserved, nofile // 4)
    return max(1, min(configured, nofile - keep))


class ConnectionGate:
    """Counts open TCP connections per peer address and in total; says whether one more may
    stay. Memory is one entry per address with a connection open."""

    def __init__(self, total: int, per_peer: int, registry: CollectorRegistry | None = None
                 ) -> None:
        self.total = total
        self.per_peer = per_peer
        self.open = 0
        self._by_peer: dict[str, int] = {}
        self._unreported: dict[str, int] = {}
        self._summary: asyncio.TimerHandle | None = None
        registry = registry if registry is not None else CollectorRegistry()
        self.refused = Counter(
            "formation_api_connections_refused", "TCP connections closed at once because a "
            "limit was reached, by limit (per_peer, total)", ["limit"], registry=registry)
        self._refused = {name: self.refused.labels(name) for name in ("per_peer", "total")}
        self.open_gauge = Gauge("formation_api_connections_open", "TCP connections open",
                                registry=registry)
        self.timed_out = Counter(
            "formation_api_connections_timed_out", "TCP connections closed for slowness, by "
            "what was late (headers, body)", ["phase"], registry=registry)

    def admit(self, peer: str) -> bool:
        """True: the connection counts against the limits until `release(peer)`. False: it
        must be closed now."""
        held = self._by_peer.get(peer, 0)
        limit = "total" if self.open >= self.total else "per_peer" if held >= self.per_peer else ""
        if limit:
            self._refused[limit].inc()
            self._unreported[limit] = self._unreported.get(limit, 0) + 1
            self._schedule_summary()
            return False
        self._by_peer[peer] = held + 1
        self.open += 1
        self.open_gauge.set(self.open)
        return True

    def release(self, peer: str) -> None:
        held = self._by_peer.get(peer, 0)
        if held <= 1:
            self._by_peer.pop(peer, None)
        else:
            self._by_peer[peer] = held - 1
        self.open = max(0, self.open - 1)
        self.open_gauge.set(self.open)

    def held_by(self, peer: str) -> int:
        return self._by_peer.get(peer, 0)

    def _schedule_summary(self) -> None:
        if self._summary is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # counted anyway; reported with the next refusal on a loop
            return
        self._summary = loop.call_later(SUMMARY_EVERY_S, self.report)

    def report(self) -> None:
        """One line for all refusals since the last one."""
        if self._summary is not None:
            self._summary.cancel()  # called before its time (at stop, or by a test)
            self._summary = None
        if not self._unreported:
            return
        counts, self._unreported = self._unreported, {}
        log.warning("TCP connections refused: limits reached", extra={"fields": {
            **{f"refused_{name}": n for name, n in sorted(counts.items())},
            "seconds": SUMMARY_EVERY_S, "open": self.open, "total_limit": self.total,
            "per_peer_limit": self.per_peer}})

    def close(self) -> None:
        self.report()
