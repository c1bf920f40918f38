"""A route as the edge serves it: plain data, so whatever decides routes (today a list handed to
the engine; later the `route.set` / `route.remove` ops' view) feeds the same engine config.

`validate_route` is pure and says what is wrong in one line per problem ("field: expected ..."):
the future op rules reuse it, the engine refuses nothing it did not first check here."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

Protocol = Literal["http", "https", "tcp"]
PROTOCOLS: tuple[str, ...] = ("http", "https", "tcp")

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")  # it becomes a Caddy @id and a metric label


@dataclass(frozen=True)
class Backend:
    """One instance serving a route: its mesh address (or a name the edge resolves) and the
    port of its `EXPOSE`."""

    address: str
    port: int

    @property
    def dial(self) -> str:
        """host:port as the engine dials it (IPv6 in brackets)."""
        if ":" in self.address:
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"


@dataclass(frozen=True)
class Route:
    """`host` may be `*.domain` (one label); `port` is the public TCP port of a tcp route and
    unset for http/https, which the edge serves on its HTTP and HTTPS ports."""

    host: str
    protocol: Protocol
    port: int | None
    backends: tuple[Backend, ...]
    name: str


def hostname_problem(host: object) -> str | None:
    """Why `host` is not a DNS name a public route can have, or None."""
    expected = ("host: expected a DNS name like www.example.com or *.example.com "
                "(lowercase letters, digits, '-', labels of 1 to 63)")
    if not isinstance(host, str) or not host or len(host) > 253:
        return expected
    labels = host.split(".")
    if labels[0] == "*":
        labels = labels[1:]
        if len(labels) < 2:
            return "host: a wildcard needs a domain of two labels or more, like *.example.com"
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return expected
    if labels[-1].isdigit():
        return "host: expected a DNS name, not an IP address"
    return None


def _port_problem(field: str, port: object) -> str | None:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        return f"{field}: expected a TCP port from 1 to 65535, got {port!r}"
    return None


def _address_problem(field: str, address: object) -> str | None:
    if not isinstance(address, str) or not address:
        return f"{field}: expected an IP address or a DNS name"
    try:
        ipaddress.ip_address(address)
        return None
    except ValueError:
        pass
    if all(_LABEL.match(label) for label in address.split(".")):
        return None
    return f"{field}: expected an IP address or a DNS name, got {address!r}"


def validate_route(route: Route) -> list[str]:
    """Every problem of one route, one line each; empty when the edge can serve it."""
    problems: list[str] = []
    if not isinstance(route.name, str) or not _NAME.match(route.name):
        problems.append("name: expected 1 to 63 of lowercase letters, digits, '-' and '_', "
                        "starting with a letter or digit")
    if route.protocol not in PROTOCOLS:
        problems.append(f"protocol: expected one of http, https, tcp, got {route.protocol!r}")
    problem = hostname_problem(route.host)
    if problem:
        problems.append(problem)
    if route.protocol == "tcp":
        problem = _port_problem("port", route.port)
        if problem:
            problems.append(problem)
    elif route.port is not None:
        problems.append("port: only for tcp routes (http and https are served on the edge's "
                        "HTTP and HTTPS ports)")
    for index, backend in enumerate(route.backends):
        for problem in (_address_problem(f"backends[{index}].address", backend.address),
                        _port_problem(f"backends[{index}].port", backend.port)):
            if problem:
                problems.append(problem)
    return problems


def backend_scope_problems(route: Route) -> list[str]:
    """For routes from the network (the future route ops), not the operator: a backend must be
    an address the edge reaches over the mesh, never the edge host itself (its loopback holds the
    node's and the engine's own sockets), nor an address that is no host's (link-local,
    multicast, unspecified). Names are refused too: a tenant's name could resolve anywhere."""
    problems = []
    for index, backend in enumerate(route.backends):
        try:
            address = ipaddress.ip_address(backend.address)
        except ValueError:
            problems.append(f"backends[{index}].address: expected an instance's mesh address, "
                            f"got the name {backend.address!r}")
            continue
        if address.is_loopback or address.is_unspecified or address.is_link_local \
                or address.is_multicast:
            problems.append(f"backends[{index}].address: {address} is not an instance's mesh "
                            "address (loopback, link-local, multicast or unspecified)")
    return problems


def validate_routes(routes: list[Route]) -> list[str]:
    """Each route's problems, prefixed with its name, then what clashes between routes: one
    name twice, one host twice for the same scheme, one public tcp port twice."""
    problems = [f"route {r.name!r}: {p}" for r in routes for p in validate_route(r)]
    names: set[str] = set()
    hosts: set[tuple[str, str]] = set()
    ports: set[int] = set()
    for route in routes:
        if route.name in names:
            problems.append(f"route {route.name!r}: name: already used by another route")
        names.add(route.name)
        if route.protocol == "tcp" and route.port is not None:
            if route.port in ports:
                problems.append(f"route {route.name!r}: port: {route.port} already taken by "
                                "another tcp route")
            ports.add(route.port)
        elif route.protocol != "tcp":
            key = (route.host, route.protocol)
            if key in hosts:
                problems.append(f"route {route.name!r}: host: {route.host} already has an "
                                f"{route.protocol} route")
            hosts.add(key)
    return problems
