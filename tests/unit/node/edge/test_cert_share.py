"""Shared certificates: which edge issues each host (rendezvous hashing), and the Caddy config
of an issuer and of another edge (pure: no process)."""

from __future__ import annotations

from pathlib import Path

from formation.node.edge.caddy_config import EnginePaths, caddy_config
from formation.node.edge.cert_share import LoadedCert, TlsShare, issuer_of
from formation.node.edge.engine import plan_changes
from formation.node.edge.routes import Backend, Route
from formation.node.edge.settings import EdgeSettings

PATHS = EnginePaths(Path("/run/edge"))
S = EdgeSettings(acme_directory="https://127.0.0.1:14000/dir")
EDGES = [f"{i:064x}" for i in range(1, 6)]
HOSTS = [f"h{i}.example.com" for i in range(200)]
ROUTE = Route("www.example.com", "https", None, (Backend("10.42.0.5", 8000),), "www")


def test_every_node_picks_the_same_issuer_whatever_the_order() -> None:
    for host in HOSTS[:20]:
        assert issuer_of(host, EDGES) == issuer_of(host, list(reversed(EDGES))) \
            == issuer_of(host, set(EDGES))
    assert issuer_of("www.example.com", []) is None


def test_hosts_spread_over_edges_and_an_edge_leaving_moves_only_its_hosts() -> None:
    before = {h: issuer_of(h, EDGES) for h in HOSTS}
    counts = {e: list(before.values()).count(e) for e in EDGES}
    assert all(20 <= n <= 60 for n in counts.values()), counts  # ~40 each
    gone = EDGES[2]
    after = {h: issuer_of(h, [e for e in EDGES if e != gone]) for h in HOSTS}
    moved = {h for h in HOSTS if before[h] != after[h]}
    assert moved == {h for h in HOSTS if before[h] == gone}


def test_without_sharing_every_host_is_asked_for_over_any_challenge() -> None:
    config = caddy_config([ROUTE], S, PATHS)
    issuer = config["apps"]["tls"]["automation"]["policies"][0]["issuers"][0]
    assert "challenges" not in issuer and "certificates" not in config["apps"]["tls"]
    assert "automatic_https" not in config["apps"]["http"]["servers"]["edge_https"]


def test_the_issuer_asks_the_ca_over_http_01_only() -> None:
    config = caddy_config([ROUTE], S, PATHS, TlsShare(issue=frozenset({ROUTE.host})))
    issuer = config["apps"]["tls"]["automation"]["policies"][0]["issuers"][0]
    assert issuer["challenges"] == {"tls-alpn": {"disabled": True}}
    assert "automatic_https" not in config["apps"]["http"]["servers"]["edge_https"]
    # a host whose issuer is not decided yet (its route came first) is not asked for
    later = Route("new.example.com", "https", None, ROUTE.backends, "new")
    config = caddy_config([ROUTE, later], S, PATHS, TlsShare(issue=frozenset({ROUTE.host})))
    assert config["apps"]["http"]["servers"]["edge_https"]["automatic_https"] == {
        "skip_certificates": ["new.example.com"]}


def test_another_edge_forwards_challenges_skips_the_ca_and_loads_the_published_one() -> None:
    share = TlsShare(forward=((ROUTE.host, "10.42.0.9:80"),),
                     load=(LoadedCert(ROUTE.host, "CERT", "KEY", 1),))
    config = caddy_config([ROUTE], S, PATHS, share)
    servers = config["apps"]["http"]["servers"]
    assert servers["edge_https"]["automatic_https"] == {"skip_certificates": [ROUTE.host]}
    [forward] = servers["edge_http"]["routes"]  # first, before any route
    assert forward == {"@id": "edge-acme-www.example.com",
                       "match": [{"host": ["www.example.com"],
                                  "path": ["/.well-known/acme-challenge/*"]}],
                       "handle": [{"handler": "reverse_proxy",
                                   "upstreams": [{"dial": "10.42.0.9:80"}]}],
                       "terminal": True}
    assert config["apps"]["tls"]["certificates"] == {"load_pem": [
        {"certificate": "CERT", "key": "KEY", "tags": ["shared-www.example.com"]}]}
    assert "KEY" not in repr(share)  # a key is never in a log line


def test_a_published_certificate_arriving_reloads_the_whole_config() -> None:
    forward = TlsShare(forward=((ROUTE.host, "10.42.0.9:80"),))
    old = caddy_config([ROUTE], S, PATHS, forward)
    new = caddy_config([ROUTE], S, PATHS, TlsShare(
        forward=forward.forward, load=(LoadedCert(ROUTE.host, "C", "K", 1),)))
    assert [(m, p) for m, p, _ in plan_changes(old, new)] == [("POST", "/load")]
    assert plan_changes(new, new) == []


def test_a_fog_host_is_never_skipped_its_edge_issues_it_from_the_network_ca() -> None:
    fog = Route("web.lab.fog", "https", None, ROUTE.backends, "web")
    config = caddy_config([ROUTE, fog], S, PATHS, TlsShare(issue=frozenset({ROUTE.host})))
    assert "automatic_https" not in config["apps"]["http"]["servers"]["edge_https"]
    first, acme = config["apps"]["tls"]["automation"]["policies"]
    assert first["subjects"] == ["web.lab.fog"] and first["issuers"][0]["module"] == "internal"
    assert "subjects" not in acme
