"""cert.set: an edge publishes the certificate of an https route's host, its key sealed to each
edge. Refused with one line and nothing written: a member node that is not an edge, an account's
key, a removed edge, a host no route names, a wildcard, a certificate for another name, a false
not_after, oversized fields. The certs view keeps the latest not_after by a current edge.
Real replicas on real SQLite, real Ed25519 keys, real X.509 certificates (cryptography)."""

from __future__ import annotations

from pathlib import Path

import pytest
from certkit import make_cert
from statekit import all_raws, craft, found, write

from formation.identity import NodeIdentity
from formation.identity.sealing import SealError, open_sealed, seal_to
from formation.node.state import cert_rules
from formation.node.state.cert_rules import chain_der, chain_pem

ADMIN, EDGE1, EDGE2, MEMBER, ALICE = (NodeIdentity.from_seed(bytes([i]) * 32)
                                      for i in (1, 2, 3, 4, 10))
HOST = "www.example.com"


@pytest.fixture
def base(short_tmp: Path) -> Path:
    return short_tmp


def network(base: Path):
    """Admin, two edges (capability given by the admin), a plain member, an https route."""
    r = found(base, ADMIN, [EDGE1, EDGE2, MEMBER])
    grants = {e.public_key_hex: write(r, ADMIN, "node.capabilities",
                                      {"node": e.public_key_hex, "capabilities": ["edge"]}).id.hex()
              for e in (EDGE1, EDGE2)}
    route = write(r, ADMIN, "route.set", {"host": HOST, "protocol": "https", "port": 80,
                                          "prefix": "web"}).id.hex()
    return r, grants, route


def payload(grant: str, route: str, host: str = HOST, days: int = 30,
            to: tuple[NodeIdentity, ...] = (EDGE1, EDGE2)) -> tuple[dict, str]:
    cert, key, not_after = make_cert(host, days)
    return ({"host": host, "route": route, "edge": grant, "chain": chain_der(cert),
             "not_after": not_after,
             "keys": {e.public_key_hex: seal_to(e.public_key_hex, key.encode()) for e in to}},
            key)


def refused(r, who: NodeIdentity, p: dict) -> tuple[str, str]:
    before = (len(all_raws(r)), r.view("certs"))
    verdict = r.ingest([craft(who, r, "cert.set", p)]).verdicts[0]
    assert verdict.status == "refused", verdict
    assert (len(all_raws(r)), r.view("certs")) == before  # nothing written
    assert "\n" not in verdict.message
    return verdict.reason, verdict.message


def test_an_edge_publishes_and_every_edge_opens_only_its_own_key(base) -> None:
    r, grants, route = network(base)
    p, key = payload(grants[EDGE1.public_key_hex], route)
    write(r, EDGE1, "cert.set", p)
    [cert] = r.view("certs")
    assert cert["key"] == HOST and cert["chain"] == p["chain"]
    assert chain_pem(cert["chain"]).startswith("-----BEGIN CERTIFICATE-----")
    assert cert["author"] == EDGE1.public_key_hex
    for edge in (EDGE1, EDGE2):
        assert open_sealed(edge, cert["keys"][edge.public_key_hex]).decode() == key
    with pytest.raises(SealError, match="not sealed to this node's key"):  # sealed to another
        open_sealed(MEMBER, cert["keys"][EDGE1.public_key_hex])
    assert "certs" not in __import__("formation.node.state.views",
                                     fromlist=["COLLECTIONS"]).COLLECTIONS  # not on the API


def test_the_later_not_after_wins_whatever_the_order(base) -> None:
    r, grants, route = network(base)
    longer, _ = payload(grants[EDGE2.public_key_hex], route, days=60)
    shorter, _ = payload(grants[EDGE1.public_key_hex], route, days=30)
    write(r, EDGE2, "cert.set", longer)
    write(r, EDGE1, "cert.set", shorter)  # later by HLC, earlier expiry: does not win
    assert r.view("certs")[0]["not_after"] == longer["not_after"]


def test_a_member_node_that_is_not_an_edge_is_refused(base) -> None:
    r, grants, route = network(base)
    p, _ = payload(grants[EDGE1.public_key_hex], route)  # someone else's grant
    assert refused(r, MEMBER, p) == (
        "unauthorized", "cert.set: only an edge node may publish certificates (payload.edge: "
        "expected the node.capabilities op that made the author one)")
    p["edge"] = route  # not a capabilities op at all
    assert refused(r, MEMBER, p)[0] == "unauthorized"


def test_an_accounts_key_is_refused(base) -> None:
    r, grants, route = network(base)
    write(r, ADMIN, "account.set", {"name": "alice", "keys": [ALICE.public_key_hex],
                                    "roles": ["admin"]})
    reason, message = refused(r, ALICE, payload(grants[EDGE1.public_key_hex], route)[0])
    assert reason == "unauthorized" and "an account's key may sign only" in message


def test_an_edge_that_lost_the_capability_or_was_removed_counts_for_nothing(base) -> None:
    r, grants, route = network(base)
    write(r, EDGE1, "cert.set", payload(grants[EDGE1.public_key_hex], route)[0])
    assert len(r.view("certs")) == 1
    write(r, ADMIN, "node.capabilities", {"node": EDGE1.public_key_hex, "capabilities": []})
    assert r.view("certs") == []  # its old grant still proves it was one; the view says not now
    write(r, ADMIN, "node.remove", {"node": EDGE2.public_key_hex})
    reason, _ = refused(r, EDGE2, payload(grants[EDGE2.public_key_hex], route)[0])
    assert reason == "unauthorized"


def test_a_host_no_https_route_names_is_refused(base) -> None:
    r, grants, route = network(base)
    grant = grants[EDGE1.public_key_hex]
    p, _ = payload(grant, route, host="other.example.com")
    assert refused(r, EDGE1, p) == (
        "invalid", "payload.route: does not name an https route.set for other.example.com")
    plain = write(r, ADMIN, "route.set", {"host": "plain.example.com", "protocol": "http",
                                          "port": 80, "prefix": "web"}).id.hex()
    assert refused(r, EDGE1, payload(grant, plain, host="plain.example.com")[0])[1] == (
        "payload.route: does not name an https route.set for plain.example.com")
    p, _ = payload(grant, route)
    p["host"] = "*.example.com"
    assert refused(r, EDGE1, p)[1].startswith("payload.host: expected an exact DNS name")


def test_a_certificate_for_another_name_or_a_false_expiry_is_refused(base) -> None:
    r, grants, route = network(base)
    p, _ = payload(grants[EDGE1.public_key_hex], route)
    other, _ = payload(grants[EDGE1.public_key_hex], route, host="evil.example.com")
    assert refused(r, EDGE1, {**p, "chain": other["chain"],
                              "not_after": other["not_after"]})[1] == (
        f"payload.chain: the certificate does not name {HOST}")
    assert refused(r, EDGE1, {**p, "not_after": p["not_after"] + 10**9})[1].startswith(
        "payload.not_after: expected the certificate's expiry")
    assert refused(r, EDGE1, {**p, "chain": [b"\x30\x03junk"]})[1] == (
        "payload.chain: expected DER certificates (one does not parse)")
    broken, _, not_after = make_cert(HOST, broken_san=True)  # parses; its extension does not
    assert refused(r, EDGE1, {**p, "chain": chain_der(broken), "not_after": not_after})[1] == (
        "payload.chain: expected DER certificates (one does not parse)")


def test_oversized_fields_are_refused(base) -> None:
    r, grants, route = network(base)
    p, _ = payload(grants[EDGE1.public_key_hex], route)
    big = p["chain"] * (cert_rules.MAX_CHAIN + 1)
    assert refused(r, EDGE1, {**p, "chain": big})[1].startswith("payload.chain: expected")
    long = [p["chain"][0] + bytes(2048 - len(p["chain"][0]))] * 4  # within the op's bounds
    assert refused(r, EDGE1, {**p, "chain": long})[1].startswith("payload.chain: expected")
    sealed = {EDGE1.public_key_hex: "A" * (cert_rules.MAX_SEALED + 1)}
    assert refused(r, EDGE1, {**p, "keys": sealed})[1].startswith("payload.keys: expected")
    many = {f"{i:064x}": "AAAA" for i in range(cert_rules.MAX_EDGES + 1)}
    assert refused(r, EDGE1, {**p, "keys": many})[1].startswith("payload.keys: expected")
    assert refused(r, EDGE1, {**p, "extra": 1})[1] == "payload.extra: not a field of this kind"
