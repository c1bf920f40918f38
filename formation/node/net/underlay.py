"""This host's underlay addresses, read from the kernel (an rtnetlink dump, async), and where
peers should send WireGuard packets. Read again every second by the mesh component: when the
set changes (DHCP gave a new lease, an operator moved the host), the node rewrites `wg_endpoints`
in its node record and the peers re-point."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

from formation.node.net.host import NetHost
from formation.node.net.peers import join_endpoint


async def underlay_addresses(host: NetHost, exclude: Sequence[str] = ()) -> list[str]:
    """Global IPv4 addresses of this host in interface order, without loopback, link-local
    and anything inside `exclude` (the mesh network: the mesh and VM bridge addresses)."""
    nets = [ipaddress.ip_network(n, strict=False) for n in exclude]
    async with host.iproute() as ipr:
        dump = [m async for m in await ipr.addr("dump", family=socket.AF_INET)]
    found: list[str] = []
    for message in sorted(dump, key=lambda m: m["index"]):
        text = message.get("IFA_ADDRESS")
        if not text:
            continue
        ip = ipaddress.ip_address(text)
        if ip.is_loopback or ip.is_link_local or ip.is_multicast or any(ip in n for n in nets):
            continue
        if text not in found:
            found.append(text)
    return found


def wg_endpoints(api_endpoints: Sequence[str], explicit: Sequence[str], port: int,
                 current: Sequence[str] | None = None) -> list[str]:
    """Where peers reach this node's WireGuard: the configured endpoints if any. Otherwise the
    host's `current` addresses with the WireGuard port, those its API endpoints name (the ones
    peers reached it by at join) first; an address no longer on the host is left out (loopback
    stays: a one-machine test). Without `current` (not read), the hosts of the API endpoints."""
    if explicit:
        return list(explicit)
    hosts = [e.rsplit(":", 1)[0].strip("[]") for e in api_endpoints]
    if current is not None:
        hosts = [h for h in hosts if h in current or _loopback(h)] + \
            [a for a in current if a not in hosts]
    found: list[str] = []
    for host in hosts:
        candidate = join_endpoint(host, port)
        if host and candidate not in found:
            found.append(candidate)
    return found


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
