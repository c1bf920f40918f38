"""The route validator: every malformed field named in one line, clashes between routes found."""

from __future__ import annotations

from typing import Any

import pytest

from formation.node.edge.routes import (
    Backend,
    Route,
    backend_scope_problems,
    validate_route,
    validate_routes,
)

B = (Backend("10.42.0.5", 8000),)


def route(host: str = "www.example.com", protocol: Any = "http", port: int | None = None,
          backends: tuple[Backend, ...] = B, name: str = "www") -> Route:
    return Route(host, protocol, port, backends, name)


@pytest.mark.parametrize("host", ["www.example.com", "*.example.com", "a-b.c.fog", "x1.io"])
def test_good_hosts_pass(host: str) -> None:
    assert validate_route(route(host)) == []


@pytest.mark.parametrize("host", [
    "", "localhost", "WWW.example.com", "-a.example.com", "a-.example.com", "a..example.com",
    "*.com", "a.*.example.com", "www.example.com.", "10.0.0.1", "a" * 64 + ".com",
    "has space.example.com", "x" * 250 + ".com",
])
def test_malformed_hosts_are_refused_in_one_line(host: str) -> None:
    problems = validate_route(route(host))
    assert len(problems) == 1 and problems[0].startswith("host: ") and "\n" not in problems[0]


def test_ports_and_backends_are_checked() -> None:
    assert validate_route(route(protocol="tcp", port=5432)) == []
    assert validate_route(route(protocol="tcp", port=None)) == [
        "port: expected a TCP port from 1 to 65535, got None"]
    assert validate_route(route(protocol="tcp", port=70000))[0].startswith("port: expected")
    assert validate_route(route(port=8080))[0].startswith("port: only for tcp routes")
    assert validate_route(route(backends=(Backend("10.0.0.1", 0),))) == [
        "backends[0].port: expected a TCP port from 1 to 65535, got 0"]
    assert validate_route(route(backends=(Backend("bad host", 80),)))[0].startswith(
        "backends[0].address: expected an IP address or a DNS name")
    assert validate_route(route(backends=(Backend("fd00::5", 80),))) == []
    assert validate_route(route(protocol="ftp"))[0].startswith("protocol: expected one of")
    assert validate_route(route(name="Bad Name"))[0].startswith("name: expected")


def test_clashes_between_routes() -> None:
    assert validate_routes([route(), route(host="api.example.com", name="api")]) == []
    assert validate_routes([route(), route(host="api.example.com")]) == [
        "route 'www': name: already used by another route"]
    assert validate_routes([route(), route(name="www2")]) == [
        "route 'www2': host: www.example.com already has an http route"]
    assert validate_routes([route(), route(protocol="https", name="www2")]) == []
    assert validate_routes([route(protocol="tcp", port=22, name="a"),
                            route(protocol="tcp", port=22, name="b")]) == [
        "route 'b': port: 22 already taken by another tcp route"]


def test_routes_from_the_network_cannot_point_at_the_edge_itself() -> None:
    """A hostile tenant's route to the edge's loopback (the node's API, the engine's admin)
    or to a name that resolves anywhere is refused by the rule the route ops will use."""
    assert backend_scope_problems(route()) == []
    for address in ("127.0.0.1", "::1", "0.0.0.0", "169.254.169.254", "fe80::1", "224.0.0.1"):
        [problem] = backend_scope_problems(route(backends=(Backend(address, 80),)))
        assert problem.startswith("backends[0].address: ") and "not an instance's" in problem
    assert backend_scope_problems(route(backends=(B[0], Backend("evil.example.com", 80)))) == [
        "backends[1].address: expected an instance's mesh address, got the name "
        "'evil.example.com'"]
