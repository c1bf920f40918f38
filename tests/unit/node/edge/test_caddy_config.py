"""Routes -> Caddy config (pure), and the admin requests a change becomes: only what changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from formation.node.edge.caddy_config import EnginePaths, caddy_config, unserved
from formation.node.edge.engine import plan_changes
from formation.node.edge.routes import Backend, Route
from formation.node.edge.settings import EdgeSettings

PATHS = EnginePaths(Path("/run/edge"))
S = EdgeSettings(acme_directory="https://127.0.0.1:14000/dir", acme_email="ops@example.com",
                 acme_ca_root=Path("/etc/pebble.pem"), health_interval_s=2)
B1, B2 = Backend("10.42.0.5", 8000), Backend("fd00::7", 8000)


def www(*backends: Backend) -> Route:
    return Route("www.example.com", "http", None, backends, "www")


def test_route_becomes_a_health_checked_round_robin_proxy() -> None:
    config = caddy_config([www(B1, B2)], S, PATHS)
    server = config["apps"]["http"]["servers"]["edge_http"]
    assert server["listen"] == [":80"]
    [route] = server["routes"]
    assert route["@id"] == "edge-route-www"
    assert route["match"] == [{"host": ["www.example.com"]}]
    proxy = route["handle"][0]
    assert proxy["upstreams"] == [{"dial": "10.42.0.5:8000"}, {"dial": "[fd00::7]:8000"}]
    assert proxy["load_balancing"]["selection_policy"] == {"policy": "round_robin"}
    assert proxy["health_checks"]["active"] == {"uri": "/", "interval": "2000ms",
                                                "timeout": "1000ms"}
    assert server["logs"]["logger_names"] == {"www.example.com": "edge.route.www"}
    assert config["admin"]["listen"] == "unix//run/edge/admin.sock"  # never a TCP port
    issuer = config["apps"]["tls"]["automation"]["policies"][0]["issuers"][0]
    assert issuer == {"module": "acme", "ca": "https://127.0.0.1:14000/dir",
                      "email": "ops@example.com", "trusted_roots_pem_files": ["/etc/pebble.pem"]}


def test_https_routes_go_to_the_https_server_exact_hosts_before_wildcards() -> None:
    routes = [Route("*.example.com", "https", None, (B1,), "any"),
              Route("a.example.com", "https", None, (B2,), "a"), www()]
    servers = caddy_config(routes, S, PATHS)["apps"]["http"]["servers"]
    assert [r["@id"] for r in servers["edge_https"]["routes"]] == ["edge-route-a",
                                                                    "edge-route-any"]
    assert servers["edge_https"]["listen"] == [":443"]
    # a route without backends answers 503 itself rather than a proxy error
    assert servers["edge_http"]["routes"][0]["handle"][0]["status_code"] == 503


def test_tcp_routes_are_named_as_unserved() -> None:
    tcp = Route("db.example.com", "tcp", 5432, (B1,), "db")
    assert unserved([www(B1), tcp]) == ["route 'db': protocol: tcp routes need Caddy's layer4 "
                                        "app, which Debian's caddy 2.6 does not have"]


def test_a_changed_backend_is_one_route_patched_by_id() -> None:
    old = caddy_config([www(B1), Route("api.example.com", "http", None, (B1,), "api")], S, PATHS)
    new = caddy_config([www(B1, B2), Route("api.example.com", "http", None, (B1,), "api")], S,
                       PATHS)
    changes = plan_changes(old, new)
    assert [(m, p) for m, p, _ in changes] == [("PATCH", "/id/edge-route-www")]
    assert changes[0][2] == new["apps"]["http"]["servers"]["edge_http"]["routes"][1]
    assert plan_changes(new, new) == []


def test_a_new_route_is_its_server_and_new_settings_the_whole_config() -> None:
    old = caddy_config([www(B1)], S, PATHS)
    new = caddy_config([www(B1), Route("api.example.com", "https", None, (B1,), "api")], S, PATHS)
    assert [(m, p) for m, p, _ in plan_changes(old, new)] == [
        ("PATCH", "/config/apps/http/servers/edge_https")]
    other = caddy_config([www(B1)], S.model_copy(update={"acme_email": "x@example.com"}), PATHS)
    assert [(m, p) for m, p, _ in plan_changes(old, other)] == [("POST", "/load")]


async def test_a_missing_engine_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    from formation.node.edge.engine import CaddyEngine, EngineError

    engine = CaddyEngine(EdgeSettings(caddy="/nonexistent/caddy"), tmp_path / "edge")
    with pytest.raises(EngineError, match=r"^edge\.caddy: no program '/nonexistent/caddy' found"):
        await engine.start([])
