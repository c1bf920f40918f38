"""dns_move_s: how long after an instance moved until its name resolves to the new address on
every host. bench/fleet.py calls `dns_move_s` right after it starts the move (or passes the
monotonic time the move started as `since`), with one (network namespace, DNS server address)
per host: each node's own resolver, as its VMs see it.

Every server is asked in its own namespace, all at once, every `every_s`, until it answers the
new address; the result is the time from `since` to the LAST server's first right answer, so
one lagging host is what the number shows. Plain UDP queries, no cache in between: what is
measured is the nodes' convergence (state sync + the DNS part), not a client's TTL (the
instance TTL, dns.instance_ttl_s, bounds what a caching client adds on top)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import dns.exception
import dns.message
import dns.query
import dns.rcode

from formation.node.net.host import call_in_netns

QUERY_TIMEOUT_S = 0.5


def _resolve_blocking(server: str, name: str, port: int) -> list[str]:
    query = dns.message.make_query(name, "A")
    try:
        reply = dns.query.udp(query, server, timeout=QUERY_TIMEOUT_S, port=port)
    except (dns.exception.DNSException, OSError):
        return []
    if reply.rcode() != dns.rcode.NOERROR:
        return []
    return sorted(r.address for rrset in reply.answer for r in rrset if hasattr(r, "address"))


async def resolve(netns: str | None, server: str, name: str, port: int = 53) -> list[str]:
    """The A addresses `server` answers for `name`, asked from inside `netns` (None: here);
    [] for no answer, NXDOMAIN or an error."""
    return await asyncio.to_thread(call_in_netns, netns,
                                   lambda: _resolve_blocking(server, name, port))


async def dns_move_s(servers: Sequence[tuple[str | None, str]], name: str, new_address: str,
                     timeout_s: float = 30.0, since: float | None = None, port: int = 53,
                     every_s: float = 0.05) -> float:
    """Seconds from `since` (time.monotonic(); default: now) until every (netns, server)
    answered `new_address` for `name`. Raises TimeoutError naming the servers that never did
    and what they last answered."""
    start = time.monotonic() if since is None else since
    deadline = start + timeout_s
    last: dict[int, list[str]] = {}

    async def one(index: int, netns: str | None, server: str) -> float:
        while True:
            last[index] = await resolve(netns, server, name, port)
            if new_address in last[index]:
                return time.monotonic()
            if time.monotonic() >= deadline:
                raise TimeoutError
            await asyncio.sleep(every_s)

    tasks = [asyncio.ensure_future(one(i, netns, server))
             for i, (netns, server) in enumerate(servers)]
    done = await asyncio.gather(*tasks, return_exceptions=True)
    late = [f"{servers[i][1]} in {servers[i][0] or 'this namespace'} answered "
            f"{last.get(i) or 'nothing'}" for i, result in enumerate(done)
            if not isinstance(result, float)]
    if late:
        raise TimeoutError(f"{name} did not resolve to {new_address} within {timeout_s:g} s: "
                           + "; ".join(late))
    return max([0.0, *(t - start for t in done if isinstance(t, float))])
