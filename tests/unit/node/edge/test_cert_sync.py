"""The edge's side of shared certificates, as pure decisions: which hosts this edge issues and
where it forwards the others' challenges, who a key is sealed to, when to publish; and the
opener, which refuses (one log line, nothing loaded) a key sealed to another node or a key that
is not the certificate's, so a bad publication cannot make Caddy refuse the whole config."""

from __future__ import annotations

import logging

import pytest
from certkit import make_cert

from formation.identity import NodeIdentity
from formation.identity.sealing import seal_to
from formation.node.edge.cert_share import issuer_of
from formation.node.edge.cert_storage import Issued
from formation.node.edge.cert_sync import CertSync, needs_publishing, plan, recipients
from formation.node.state.cert_rules import MAX_EDGES, chain_der

ME, OTHER, THIRD = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (2, 3, 4))
HOST = "www.example.com"


def node(who: NodeIdentity, address: str, caps: list[str]) -> dict:
    return {"key": who.public_key_hex, "roles": ["member"], "address": address,
            "capabilities": caps, "capabilities_op": "cc" * 32}


NODES = [node(ME, "10.42.0.2", ["edge"]), node(OTHER, "10.42.0.3", ["edge"]),
         node(THIRD, "10.42.0.4", ["builder"])]
HOSTS = [f"h{i}.example.com" for i in range(30)]
ROUTES = [{"key": h, "id": f"{i:064x}", "protocol": "https"} for i, h in enumerate(HOSTS)] + [
    {"key": "*.example.com", "id": "ab" * 32, "protocol": "https"},
    {"key": "plain.example.com", "id": "cd" * 32, "protocol": "http"},
    {"key": "web.lab.fog", "id": "ef" * 32, "protocol": "https"}]  # the network CA's, per edge


def test_a_node_without_the_edge_capability_shares_nothing() -> None:
    assert plan(THIRD.public_key_hex, NODES, ROUTES, set(), 80) is None


def test_each_https_host_is_issued_by_one_edge_and_forwarded_by_the_other() -> None:
    mine = plan(ME.public_key_hex, NODES, ROUTES, set(), 80)
    theirs = plan(OTHER.public_key_hex, NODES, ROUTES, set(), 80)
    assert mine is not None and theirs is not None
    # no wildcard, no http route, no .fog name (each edge issues those from the network CA)
    assert mine.share.issue | theirs.share.issue == set(HOSTS)
    assert not mine.share.issue & theirs.share.issue and mine.share.issue
    assert dict(mine.share.forward) == {h: "10.42.0.3:80" for h in theirs.share.issue}
    assert dict(theirs.share.forward) == {h: "10.42.0.2:80" for h in mine.share.issue}
    assert mine.edges == tuple(sorted([ME.public_key_hex, OTHER.public_key_hex]))
    assert mine.routes[HOSTS[3]] == f"{3:064x}" and mine.grant == "cc" * 32


def test_an_edge_seen_dead_issues_nothing_the_live_one_takes_its_hosts() -> None:
    mine = plan(ME.public_key_hex, NODES, ROUTES, {OTHER.public_key_hex}, 80)
    assert mine is not None and mine.share.issue == set(HOSTS) and not mine.share.forward
    assert OTHER.public_key_hex in mine.edges  # still sealed to: it may come back
    assert issuer_of(HOSTS[0], [ME.public_key_hex]) == ME.public_key_hex


def test_keys_are_sealed_to_every_edge_this_one_first_within_the_ops_bound() -> None:
    edges = tuple(f"{i:064x}" for i in range(20))
    to = recipients(edges[7], edges)
    assert to[0] == edges[7] and len(to) == MAX_EDGES and len(set(to)) == MAX_EDGES


def test_publish_a_newer_certificate_or_its_own_again_when_the_edges_changed() -> None:
    me, other = ME.public_key_hex, OTHER.public_key_hex
    found = Issued(HOST, "C", "K", 2000)
    assert needs_publishing(found, None, me, [me])
    assert needs_publishing(found, {"not_after": 1000, "author": other, "keys": {}}, me, [me])
    assert not needs_publishing(found, {"not_after": 3000, "author": other}, me, [me])
    same = {"not_after": 2000, "author": me, "keys": {me: "x"}}
    assert not needs_publishing(found, same, me, [me])
    assert needs_publishing(found, same, me, [me, other])  # a new edge gets the key


def published(key_pem: str, cert_pem: str, to: NodeIdentity, not_after: int) -> dict:
    return {"key": HOST, "id": "ee" * 32, "chain": chain_der(cert_pem), "not_after": not_after,
            "keys": {ME.public_key_hex: seal_to(to.public_key_hex, key_pem.encode())},
            "author": OTHER.public_key_hex}


def opener() -> CertSync:
    async def apply(_share: object) -> None:
        return None
    return CertSync(None, ME, None, 80, apply)  # no store, no storage: _open only


def test_the_published_certificate_opens_with_its_key() -> None:
    cert, key, not_after = make_cert(HOST)
    loaded = opener()._open(published(key, cert, ME, not_after))
    assert loaded is not None and loaded.key_pem == key and loaded.not_after == not_after
    assert loaded.cert_pem.startswith("-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize("case", ["sealed to another node", "another certificate's key"])
def test_a_bad_publication_is_not_loaded_one_line_logged(case: str, caplog) -> None:
    cert, key, not_after = make_cert(HOST)
    if case == "sealed to another node":
        bad = published(key, cert, OTHER, not_after)
    else:
        bad = published(make_cert(HOST)[1], cert, ME, not_after)
    with caplog.at_level(logging.WARNING):
        assert opener()._open(bad) is None
    [record] = [r for r in caplog.records if "cannot be opened" in r.getMessage()]
    assert "\n" not in str(record.__dict__.get("fields"))
