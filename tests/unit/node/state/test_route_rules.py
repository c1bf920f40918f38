"""route.set / route.remove in the store: who may write a route, to which instances, on which
port; hostile writers (a member node, another account, a taken hostname, a malformed hostname,
a port the instance does not expose) are refused with one line and nothing is written. Real
replicas on real SQLite, real Ed25519 keys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from statekit import all_raws, craft, found, replica, spec, write

from formation.identity import NodeIdentity
from formation.node.state.op import decode

ADMIN, NODE = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (1, 2))
ALICE, BOB, CAROL = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (10, 12, 13))


@pytest.fixture
def base(short_tmp: Path) -> Path:
    return short_tmp


def tenants(base: Path, name: str = "a"):
    r = found(base, ADMIN, [NODE], name)
    for who, key in (("alice", ALICE), ("bob", BOB)):
        write(r, ADMIN, "account.set", {"name": who, "keys": [key.public_key_hex],
                                        "roles": ["user"]})
    write(r, ADMIN, "account.set", {"name": "ops", "keys": [CAROL.public_key_hex],
                                    "roles": ["admin"]})
    return r


def verdict(r, raw: bytes):
    return r.ingest([raw]).verdicts[0]


def accepted(r, who: NodeIdentity, kind: str, payload: dict):
    raw = craft(who, r, kind, payload)
    v = verdict(r, raw)
    assert v.status == "accepted", v
    return decode(raw)


def refused(r, who: NodeIdentity, kind: str, payload: dict) -> tuple[str, str]:
    before = len(all_raws(r))
    v = verdict(r, craft(who, r, kind, payload))
    assert v.status == "refused", v
    assert len(all_raws(r)) == before and "\n" not in v.message  # nothing written, one line
    return v.reason, v.message


def instance(r, who: NodeIdentity, name: str, account: str, ports=("80/tcp",)) -> str:
    payload = {"name": name, "spec": spec(ports=list(ports)), "account": account}
    return accepted(r, who, "instance.create", payload).id.hex()


def route(host: str, instances: list[str] | None = None, account: str | None = "alice",
          **over) -> dict:
    payload: dict = {"host": host, "protocol": "http", "port": 80, **over}
    if instances is not None:
        payload["instances"] = instances
    if account is not None:
        payload["account"] = account
    return payload


def test_a_tenant_routes_its_own_instances_and_the_view_shows_it(base) -> None:
    r = tenants(base)
    web = instance(r, ALICE, "web", "alice")
    op = accepted(r, ALICE, "route.set", route("www.example.com", [web]))
    [shown] = r.view("routes")
    assert shown["key"] == "www.example.com" and shown["id"] == op.id.hex()
    assert shown["instances"] == [web] and shown["account"] == "alice"
    assert shown["ops"] == [op.id.hex()] and shown["author"] == ALICE.public_key_hex
    accepted(r, ALICE, "route.remove", {"route": op.id.hex()})
    assert r.view("routes") == []


def test_a_member_node_cannot_write_or_remove_routes(base) -> None:
    r = tenants(base)
    web = instance(r, ALICE, "web", "alice")
    reason, message = refused(r, NODE, "route.set", route("www.example.com", [web]))
    assert reason == "unauthorized" and "member node may not write routes" in message
    op = write(r, ADMIN, "route.set", route("www.example.com", [web], account=None))
    reason, message = refused(r, NODE, "route.remove", {"route": op.id.hex()})
    assert reason == "unauthorized"
    assert len(r.view("routes")) == 1


def test_a_tenant_cannot_route_to_another_accounts_instance(base) -> None:
    r = tenants(base)
    theirs = instance(r, BOB, "api", "bob")
    reason, message = refused(r, ALICE, "route.set", route("www.example.com", [theirs]))
    assert reason == "unauthorized"
    assert message == ("payload.instances[0]: instance 'api' belongs to account 'bob', not to "
                       "account 'alice'")
    reason, message = refused(r, ALICE, "route.set", route("www.example.com", [theirs], "bob"))
    assert reason == "unauthorized" and message.startswith("payload.account")
    nodes = write(r, NODE, "instance.create", {"name": "n", "spec": spec()}).id.hex()
    assert "belongs to a node" in refused(r, ALICE, "route.set",
                                          route("www.example.com", [nodes]))[1]
    # admins: a network admin node and an admin account's key route to any instance
    write(r, ADMIN, "route.set", route("a.example.com", [theirs], account=None))
    accepted(r, CAROL, "route.set", route("b.example.com", [theirs], account="bob"))
    assert [x["key"] for x in r.view("routes")] == ["a.example.com", "b.example.com"]


def test_a_malformed_route_is_refused_with_the_field_that_is_wrong(base) -> None:
    r = tenants(base)
    web = instance(r, ALICE, "web", "alice")
    bad = [
        (route("Bad_Host.example.com", [web]), "payload.host"),
        (route("localhost", [web]), "payload.host"),
        (route("10.0.0.1", [web]), "payload.host"),
        (route("*.com", [web]), "payload.host"),
        (route("a..example.com", [web]), "payload.host"),
        (route("x" * 64 + ".example.com", [web]), "payload.host"),
        (route("www.example.com", [web], protocol="udp"), "payload.protocol"),
        (route("www.example.com", [web], port=0), "payload.port"),
        (route("www.example.com", [web], protocol="tcp"), "payload.listen"),
        (route("www.example.com", [web], listen=8080), "payload.listen"),
        (route("www.example.com"), "payload.instances"),
        (route("www.example.com", [web], prefix="web"), "payload.instances"),
        (route("www.example.com", [web, web]), "payload.instances"),
        (route("www.example.com", ["zz"]), "payload.instances"),
        (route("www.example.com", prefix="Web_"), "payload.prefix"),
        (route("www.example.com", [web], extra=1), "payload.extra"),
    ]
    for payload, field in bad:
        reason, message = refused(r, ALICE, "route.set", payload)
        assert reason == "invalid" and message.startswith(field), (payload, message)
    assert r.view("routes") == []


def test_the_port_must_be_one_the_instance_exposes(base) -> None:
    r = tenants(base)
    web = instance(r, ALICE, "web", "alice", ports=("80/tcp", "53/udp"))
    reason, message = refused(r, ALICE, "route.set", route("www.example.com", [web], port=8080))
    assert reason == "invalid"
    assert message == ("payload.port: instance 'web' does not expose 8080/tcp (it exposes "
                       "80/tcp, 53/udp)")
    assert "does not expose 53/tcp" in refused(r, ALICE, "route.set",
                                               route("www.example.com", [web], port=53))[1]
    # a spec without ports says nothing about them: any port (the health checks tell)
    bare = accepted(r, ALICE, "instance.create",
                    {"name": "bare", "spec": spec(), "account": "alice"}).id.hex()
    accepted(r, ALICE, "route.set", route("www.example.com", [bare], port=8080))


def test_a_taken_hostname_stays_its_first_accounts(base) -> None:
    """Bob's route for alice's hostname is valid in itself (the rules cannot see ops outside its
    causal past); the view serves alice's, and bob cannot remove hers."""
    r = tenants(base)
    web = instance(r, ALICE, "web", "alice")
    api = instance(r, BOB, "api", "bob")
    hers = accepted(r, ALICE, "route.set", route("www.example.com", [web]))
    accepted(r, BOB, "route.set", route("www.example.com", [api], "bob"))
    [shown] = r.view("routes")
    assert shown["account"] == "alice" and shown["id"] == hers.id.hex()
    assert shown["shadowed"] == 1
    reason, message = refused(r, BOB, "route.remove", {"route": hers.id.hex()})
    assert reason == "unauthorized" and "belongs to account 'alice'" in message
    # her newer route for the same slot replaces the served one; both ops are listed
    newer = accepted(r, ALICE, "route.set", route("www.example.com", prefix="web"))
    [shown] = r.view("routes")
    assert shown["id"] == newer.id.hex() and shown["prefix"] == "web"
    assert shown["ops"] == [hers.id.hex(), newer.id.hex()]


def test_a_name_under_an_earlier_wildcard_is_the_wildcards_accounts(base) -> None:
    r = tenants(base)
    web = instance(r, ALICE, "web", "alice")
    api = instance(r, BOB, "api", "bob")
    accepted(r, BOB, "route.set", route("early.example.org", [api], "bob"))
    accepted(r, ALICE, "route.set", route("*.example.org", [web]))
    accepted(r, ALICE, "route.set", route("*.example.com", [web]))
    accepted(r, BOB, "route.set", route("bob.example.com", [api], "bob"))
    shown = {x["key"]: x["account"] for x in r.view("routes")}
    # bob's name came before alice's wildcard and stays his; the one inside it serves nothing
    assert shown == {"early.example.org": "bob", "*.example.org": "alice",
                     "*.example.com": "alice"}
    hers = accepted(r, ALICE, "route.set", route("bob.example.com", [web]))
    [inside] = [x for x in r.view("routes") if x["key"] == "bob.example.com"]
    assert inside["account"] == "alice" and inside["id"] == hers.id.hex()
    assert inside["shadowed"] == 1


def test_a_removed_accounts_routes_serve_nothing_and_free_the_hostname(base) -> None:
    r = tenants(base)
    web = instance(r, ALICE, "web", "alice")
    api = instance(r, BOB, "api", "bob")
    accepted(r, ALICE, "route.set", route("www.example.com", [web]))
    accepted(r, BOB, "route.set", route("www.example.com", [api], "bob"))
    assert [x["account"] for x in r.view("routes")] == ["alice"]
    write(r, ADMIN, "account.remove", {"name": "alice"})
    assert [x["account"] for x in r.view("routes")] == ["bob"]


def test_the_view_is_the_same_whatever_order_ops_arrive_in(base) -> None:
    r = tenants(base)
    web = instance(r, ALICE, "web", "alice")
    api = instance(r, BOB, "api", "bob")
    accepted(r, ALICE, "route.set", route("www.example.com", [web]))
    accepted(r, BOB, "route.set", route("www.example.com", [api], "bob"))
    accepted(r, ALICE, "route.set", route("t.example.com", [web], protocol="tcp", listen=2222))
    accepted(r, BOB, "route.set", route("u.example.com", [api], "bob", protocol="tcp",
                                         listen=2222))
    raws = all_raws(r)
    other = replica(base, "b")
    for raw in reversed(raws):  # held until their parents arrive, then applied
        other.ingest([raw])
    assert other.view("routes") == r.view("routes")
    conflicts = {x["key"]: x.get("conflict") for x in r.view("routes")}
    assert conflicts["t.example.com"] is None
    assert conflicts["u.example.com"] == ("listen: port 2222 is taken by the route for "
                                          "t.example.com")


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
                     st.text(max_size=20), st.binary(max_size=8),
                     st.sampled_from(["http", "tcp", "www.example.com", "*.example.com", "alice",
                                      "ab" * 32, 80, 65536]))
_values = st.recursive(_scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=6), kids, max_size=3)),
    max_leaves=6)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kind=st.sampled_from(["route.set", "route.remove"]), who=st.sampled_from([0, 1, 2]),
       payload=st.dictionaries(st.sampled_from(
           ["host", "protocol", "port", "listen", "instances", "prefix", "account", "route"]),
           _values, max_size=6))
def test_any_route_payload_gets_a_verdict_and_the_view_stays_readable(
        short_tmp: Path, kind: str, who: int, payload: dict) -> None:
    r = tenants(short_tmp, os.urandom(6).hex())
    try:
        raw = craft((ADMIN, ALICE, NODE)[who], r, kind, payload)
        [v] = r.ingest([raw]).verdicts
        assert v.status in ("accepted", "refused", "buffered")
        assert "cannot be checked" not in v.message  # every payload is the rules' own verdict
        r.view("routes")
    finally:
        r.close()
        for leftover in short_tmp.iterdir():
            leftover.unlink()
