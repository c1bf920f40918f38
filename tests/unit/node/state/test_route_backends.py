"""From the routes and instances views to the edge's routes (route_backends.edge_routes), over
real replicas: backends are the addresses the instances' current placements report while
running, so an instance that moves to another node is followed; a stopped instance, one whose
spec stops exposing the port, another account's instance under a prefix, and an address no
instance may have (a hostile node reporting loopback) serve nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from statekit import craft, found, spec, write

from formation.identity import NodeIdentity
from formation.node.edge.routes import Backend, Route
from formation.node.state.op import decode
from formation.node.state.route_backends import edge_routes, route_name
from formation.node.state.route_feed import servable

ADMIN, NODE, OTHER = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (1, 2, 3))
ALICE, BOB = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (10, 12))


@pytest.fixture
def r(short_tmp: Path):
    r = found(short_tmp, ADMIN, [NODE, OTHER])
    for name, key in (("alice", ALICE), ("bob", BOB)):
        write(r, ADMIN, "account.set", {"name": name, "keys": [key.public_key_hex],
                                        "roles": ["user"]})
    yield r
    r.close()


def signed(r, who: NodeIdentity, kind: str, payload: dict) -> str:
    raw = craft(who, r, kind, payload)
    [verdict] = r.ingest([raw]).verdicts
    assert verdict.status == "accepted", verdict
    return decode(raw).id.hex()


def create(r, who: NodeIdentity, name: str, account: str, ports=("80/tcp",)) -> str:
    return signed(r, who, "instance.create", {"name": name, "account": account,
                                              "spec": spec(ports=list(ports))})


def run_on(r, node: NodeIdentity, inst: str, address: str, state: str = "running",
           moved_from: str | None = None) -> str:
    place = {"instance": inst, "node": node.public_key_hex}
    if moved_from:
        place["from"] = moved_from
    placement = signed(r, node, "instance.place", place)
    report(r, node, inst, placement, address, state)
    return placement


def report(r, node: NodeIdentity, inst: str, placement: str, address: str,
           state: str = "running") -> None:
    signed(r, node, "instance.status", {"instance": inst, "placement": placement,
                                        "observed": {"state": state, "address": address}})


def served(r) -> list[Route]:
    return edge_routes(r.view("routes"), r.view("instances"))


def test_backends_follow_the_instances_current_placement(r) -> None:
    web = create(r, ALICE, "web", "alice")
    first = run_on(r, NODE, web, "10.42.1.5")
    signed(r, ALICE, "route.set", {"host": "www.example.com", "protocol": "http", "port": 80,
                                   "instances": [web], "account": "alice"})
    assert served(r) == [Route("www.example.com", "http", None, (Backend("10.42.1.5", 80),),
                               "www_example_com_http")]
    # moved to another node: the new placement's report is the backend, the old one's is not
    moved = run_on(r, OTHER, web, "10.42.2.7", moved_from=first)
    assert served(r)[0].backends == (Backend("10.42.2.7", 80),)
    report(r, NODE, web, first, "10.42.1.5")  # the old node reporting late changes nothing
    assert served(r)[0].backends == (Backend("10.42.2.7", 80),)
    report(r, OTHER, web, moved, "10.42.2.7", "stopped")
    assert served(r)[0].backends == ()  # kept, serving nothing (the edge answers 503)
    # a hostile node reports an address that would turn the edge on its own host
    report(r, OTHER, web, moved, "127.0.0.1")
    assert served(r)[0].backends == ()
    # the spec stops exposing the port
    report(r, OTHER, web, moved, "10.42.2.7")
    assert served(r)[0].backends == (Backend("10.42.2.7", 80),)
    signed(r, ALICE, "instance.update", {"instance": web, "spec": spec(ports=["443/tcp"])})
    assert served(r)[0].backends == ()


def test_a_prefix_route_serves_its_accounts_instances_as_they_come(r) -> None:
    signed(r, ALICE, "route.set", {"host": "*.example.com", "protocol": "https", "port": 80,
                                   "prefix": "web", "account": "alice"})
    assert served(r) == [Route("*.example.com", "https", None, (), "wild_example_com_https")]
    run_on(r, NODE, create(r, ALICE, "web-1", "alice"), "10.42.1.5")
    run_on(r, NODE, create(r, ALICE, "web-2", "alice"), "10.42.1.6")
    run_on(r, NODE, create(r, BOB, "web-bob", "bob"), "10.42.1.7")  # not alice's
    run_on(r, NODE, create(r, ALICE, "api", "alice"), "10.42.1.8")  # not the prefix
    assert served(r)[0].backends == (Backend("10.42.1.5", 80), Backend("10.42.1.6", 80))


def test_routes_the_engine_cannot_take_are_left_out_alone(r) -> None:
    web = create(r, ALICE, "web", "alice", ports=("80/tcp", "22/tcp"))
    run_on(r, NODE, web, "10.42.1.5")
    for host, extra in (("www.example.com", {}), ("ssh.example.com",
                                                  {"protocol": "tcp", "listen": 2222})):
        signed(r, ALICE, "route.set", {"host": host, "protocol": "http", "port": 80,
                                       "instances": [web], "account": "alice", **extra})
    routes = served(r)
    assert [x.protocol for x in routes] == ["tcp", "http"]  # sorted by host: ssh, www
    operator = Route("www.example.com", "http", None, (), "mine")
    kept, left_out = servable([operator], routes)
    assert kept == []
    assert "layer4" in left_out["ssh_example_com_tcp2222"]
    assert "already has an http route" in left_out["www_example_com_http"]
    kept, left_out = servable([], routes)
    assert [x.name for x in kept] == ["www_example_com_http"]


def test_route_names_are_valid_and_distinct() -> None:
    long = "a" * 60 + ".example.com"
    names = {route_name({"key": long, "protocol": "http"}),
             route_name({"key": "a" * 60 + ".example.org", "protocol": "http"}),
             route_name({"key": long, "protocol": "https"})}
    assert len(names) == 3 and all(len(n) <= 63 for n in names)
