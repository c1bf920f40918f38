"""One public tcp port serves one route, against hostile writers: a route op cannot see the
routes view (a rule judges only the op's causal past), so a port clash is settled by the view on
every replica alike: the route that had the port first keeps it, a later one (another account
signing its own op past the API's 409, or a concurrent write) is stored but marked `conflict`
and the edge never serves it; a member node may not write a tcp route at all. Real replicas on
real SQLite, real Ed25519 keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from statekit import all_raws, craft, replica
from test_route_rules import ALICE, BOB, NODE, accepted, instance, refused, route, tenants

from formation.node.state.route_backends import edge_routes


@pytest.fixture
def base(short_tmp: Path) -> Path:
    return short_tmp


def tcp(host: str, instances: list[str], account: str, listen: int = 2222) -> dict:
    return route(host, instances, account, protocol="tcp", port=22, listen=listen)


def served(r) -> dict[str, int | None]:
    return {x.host: x.port for x in edge_routes(r.view("routes"), r.view("instances"))}


def test_another_accounts_route_for_a_taken_port_is_stored_but_never_served(base) -> None:
    r = tenants(base)
    web = instance(r, ALICE, "web", "alice", ports=("22/tcp",))
    api = instance(r, BOB, "api", "bob", ports=("22/tcp",))
    alices = accepted(r, ALICE, "route.set", tcp("ssh.alice.example", [web], "alice"))
    # bob signs his own op for alice's public port, past the API that would refuse it (409)
    accepted(r, BOB, "route.set", tcp("ssh.bob.example", [api], "bob"))
    view = {x["key"]: x for x in r.view("routes")}
    assert view["ssh.bob.example"]["conflict"] == (
        "listen: port 2222 is taken by the route for ssh.alice.example")
    assert served(r) == {"ssh.alice.example": 2222}  # the edge serves alice's alone
    # bob's own route on a free port is his
    accepted(r, BOB, "route.set", tcp("db.bob.example", [api], "bob", listen=5432))
    assert served(r) == {"ssh.alice.example": 2222, "db.bob.example": 5432}
    # alice removes hers: the port is free, and bob's stored route takes it on every replica
    accepted(r, ALICE, "route.remove", {"route": alices.id.hex()})
    assert served(r) == {"ssh.bob.example": 2222, "db.bob.example": 5432}
    other = replica(base, "b")
    for raw in reversed(all_raws(r)):
        other.ingest([raw])
    assert other.view("routes") == r.view("routes")


def test_concurrent_routes_for_one_port_agree_on_every_replica(base) -> None:
    """Neither write sees the other (two replicas); whichever order they meet in, the earlier
    by (HLC, op id) keeps the port."""
    r = tenants(base)
    web = instance(r, ALICE, "web", "alice", ports=("22/tcp",))
    api = instance(r, BOB, "api", "bob", ports=("22/tcp",))
    other = replica(base, "b")
    other.ingest(all_raws(r))
    mine = craft(ALICE, r, "route.set", tcp("ssh.alice.example", [web], "alice"))
    theirs = craft(BOB, other, "route.set", tcp("ssh.bob.example", [api], "bob"))
    assert r.ingest([mine]).verdicts[0].status == "accepted"
    assert other.ingest([theirs]).verdicts[0].status == "accepted"
    r.ingest([theirs])
    other.ingest([mine])
    assert r.view("routes") == other.view("routes")
    assert served(r) == served(other) and len(served(r)) == 1
    assert sum("conflict" in x for x in r.view("routes")) == 1


def test_a_member_node_may_not_write_a_tcp_route(base) -> None:
    r = tenants(base)
    web = instance(r, ALICE, "web", "alice", ports=("22/tcp",))
    reason, message = refused(r, NODE, "route.set", tcp("ssh.alice.example", [web], "alice"))
    assert reason == "unauthorized" and "a member node may not write routes" in message
