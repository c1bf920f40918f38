"""tcp routes -> HAProxy's config (pure), what the engine expects to see once a worker runs it,
and which tcp routes of the state it can serve beside the others."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from formation.node.edge.haproxy_config import (
    HaproxyPaths,
    expected_proxies,
    expected_servers,
    haproxy_config,
    servable_tcp,
)
from formation.node.edge.routes import Backend, Route
from formation.node.edge.settings import EdgeSettings

PATHS = HaproxyPaths(Path("/run/edge"))
S = EdgeSettings(health_interval_s=2, health_timeout_s=0.5, listen=["192.0.2.1", "2001:db8::1"])
B1, B2 = Backend("10.42.0.5", 5432), Backend("fd00::7", 5432)


def db(*backends: Backend, port: int = 5432, name: str = "db") -> Route:
    return Route(f"{name}.example.com", "tcp", port, backends, name)


def test_a_tcp_route_becomes_a_frontend_and_a_health_checked_round_robin_backend() -> None:
    text = haproxy_config([db(B1, B2)], S, PATHS)
    assert "frontend fe_db\n    bind 192.0.2.1:5432\n    bind [2001:db8::1]:5432\n" in text
    assert "backend be_db\n    balance roundrobin\n" in text
    assert "    server b0 10.42.0.5:5432\n    server b1 [fd00::7]:5432\n" in text
    # checks every health_interval_s, one failure out, one success back; a refused connect
    # marks the backend down at once and is retried elsewhere
    assert "default-server check inter 2000ms fastinter 2000ms downinter 2000ms fall 1 " \
        "rise 1 observe layer4 error-limit 1 on-error mark-down" in text
    assert "option redispatch 1" in text and "retries 3" in text
    assert "timeout check 500ms" in text
    # the runtime socket is a unix path, never a TCP port
    assert "stats socket /run/edge/haproxy-stats.sock mode 600 level admin" in text
    assert "stats socket" in text and "bind :" not in text


def test_http_routes_are_left_to_caddy_and_order_is_stable() -> None:
    www = Route("www.example.com", "http", None, (B1,), "www")
    ssh = db(B1, port=22, name="ssh")
    text = haproxy_config([db(B1), www, ssh], EdgeSettings(), PATHS)
    assert "www" not in text
    assert text.index("frontend fe_ssh") < text.index("frontend fe_db")  # by public port
    assert "    bind :22\n" in text
    assert text == haproxy_config([ssh, www, db(B1)], EdgeSettings(), PATHS)


def test_a_route_without_backends_still_listens() -> None:
    text = haproxy_config([db()], S, PATHS)
    assert "backend be_db\n    balance roundrobin\n" in text and "server" not in text.split(
        "backend be_db")[1]


def test_what_a_running_worker_shows_for_the_routes() -> None:
    routes = [db(B1, B2), db(port=22, name="ssh")]
    assert expected_proxies(routes) == {"fe_db", "be_db", "fe_ssh", "be_ssh"}
    assert expected_servers(routes) == {("be_db", "b0", "10.42.0.5:5432"),
                                        ("be_db", "b1", "[fd00::7]:5432")}


def test_a_tcp_route_of_the_state_on_a_taken_port_is_left_out_alone() -> None:
    fixed = [db(B1)]  # the operator's own route holds 5432
    wanted = [db(B2, name="other"), db(B2, port=22, name="ssh")]
    kept, left_out = servable_tcp(fixed, wanted, S)
    assert [r.name for r in kept] == ["ssh"]
    assert left_out == {"other": "route 'other': port: 5432 already taken by another tcp route"}


def test_a_tcp_route_on_the_edges_http_or_https_port_is_left_out() -> None:
    settings = EdgeSettings(http_port=8080, https_port=8443)
    kept, left_out = servable_tcp([], [db(B1, port=8080, name="a"), db(B1, port=8443, name="b"),
                                       db(B1, port=80, name="c")], settings)
    assert [r.name for r in kept] == ["c"]  # 80 is not this edge's HTTP port
    assert left_out == {
        "a": "route 'a': port: 8080 is the edge's HTTP port (http and https routes)",
        "b": "route 'b': port: 8443 is the edge's HTTPS port (http and https routes)"}


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy")
def test_haproxy_itself_accepts_the_config(tmp_path: Path) -> None:
    paths = HaproxyPaths(tmp_path)
    paths.config_file.write_text(haproxy_config(
        [db(B1, B2), db(port=22, name="ssh")], S, paths))
    check = subprocess.run(["haproxy", "-c", "-f", str(paths.config_file)],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
