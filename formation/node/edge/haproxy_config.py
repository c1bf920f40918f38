"""tcp routes -> HAProxy's config text: a pure function, so what the edge will serve is testable
without a process, and the engine compares two of them to know whether to reload.

Debian's Caddy 2.6 has no layer4 app, so tcp routes are served by Debian's HAProxy 2.6 beside
it (haproxy_engine.py). Shape:
- one `frontend` per route (`fe_<name>`) bound to the route's public port on the edge's
  `listen` addresses, and one `backend` (`be_<name>`) with the instances' mesh addresses;
- round robin; active TCP connect checks every `edge.health_interval_s` (`fall 1 rise 1`: one
  failed check takes a backend out, one passing brings it back); a refused connection is retried
  on another backend at once (`retries` + `option redispatch 1`) and counts as a failed check
  (`observe layer4`), so a dead backend costs no failed connection;
- the stats/runtime socket is a unix path under `run_dir` (mode 0600), never a TCP port; the
  master socket (reloads) is given on the command line;
- generous client/server timeouts: a tcp route carries long-lived sessions (databases, SSH) that
  must not be cut while idle."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from formation.node.edge.routes import Route, validate_routes
from formation.node.edge.settings import EdgeSettings

FRONTEND_PREFIX = "fe_"
BACKEND_PREFIX = "be_"
IDLE_TIMEOUT = "1h"  # a tcp session idle this long is closed (HAProxy needs a bound)
RETRIES = 3


@dataclass(frozen=True)
class HaproxyPaths:
    """The engine's files: its config, the master socket (reloads, `show proc`) and the
    stats/runtime socket (`show stat`: health and counters)."""

    run_dir: Path

    @property
    def config_file(self) -> Path:
        return self.run_dir / "haproxy.cfg"

    @property
    def master_socket(self) -> Path:
        return self.run_dir / "haproxy-master.sock"

    @property
    def stats_socket(self) -> Path:
        return self.run_dir / "haproxy-stats.sock"


def tcp_routes(routes: list[Route]) -> list[Route]:
    """The routes this engine serves, in a stable order (by public port, then name)."""
    return sorted((r for r in routes if r.protocol == "tcp"),
                  key=lambda r: (r.port or 0, r.name))


def server_name(index: int) -> str:
    return f"b{index}"


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _binds(settings: EdgeSettings, port: int) -> list[str]:
    if not settings.listen:
        return [f":{port}"]
    return [f"[{a}]:{port}" if ":" in str(a) else f"{a}:{port}" for a in settings.listen]


def haproxy_config(routes: list[Route], settings: EdgeSettings, paths: HaproxyPaths) -> str:
    """The whole config for the tcp routes among `routes` (already valid:
    routes.validate_routes). Routes of other protocols are Caddy's and left out."""
    lines = [
        "# written by the formation node (formation/node/edge/haproxy_config.py); "
        "changes are overwritten",
        "global",
        f"    stats socket {paths.stats_socket} mode 600 level admin",
        "    log stderr format raw local0 notice",
        "",
        "defaults",
        "    mode tcp",
        "    log global",
        "    option dontlognull",
        f"    retries {RETRIES}",
        "    option redispatch 1",  # every retry goes to another backend
        f"    timeout connect {_ms(settings.health_timeout_s)}ms",
        f"    timeout check {_ms(settings.health_timeout_s)}ms",
        f"    timeout client {IDLE_TIMEOUT}",
        f"    timeout server {IDLE_TIMEOUT}",
        "    default-server check inter {0}ms fastinter {0}ms downinter {0}ms fall 1 rise 1 "
        "observe layer4 error-limit 1 on-error mark-down".format(
            _ms(settings.health_interval_s)),
    ]
    for route in tcp_routes(routes):
        assert route.port is not None  # validate_routes: a tcp route has its public port
        lines += ["", f"frontend {FRONTEND_PREFIX}{route.name}"]
        lines += [f"    bind {bind}" for bind in _binds(settings, route.port)]
        lines += [f"    default_backend {BACKEND_PREFIX}{route.name}",
                  "", f"backend {BACKEND_PREFIX}{route.name}", "    balance roundrobin"]
        lines += [f"    server {server_name(i)} {b.dial}" for i, b in enumerate(route.backends)]
    return "\n".join(lines) + "\n"


def expected_servers(routes: list[Route]) -> set[tuple[str, str, str]]:
    """(backend, server, address) of every backend server the config for `routes` has: what
    `show stat` lists once a worker runs that config (how a reload is known to be done)."""
    return {(f"{BACKEND_PREFIX}{r.name}", server_name(i), b.dial)
            for r in tcp_routes(routes) for i, b in enumerate(r.backends)}


def expected_proxies(routes: list[Route]) -> set[str]:
    """The frontends and backends the config for `routes` has."""
    return {f"{prefix}{r.name}" for r in tcp_routes(routes)
            for prefix in (FRONTEND_PREFIX, BACKEND_PREFIX)}


def port_problems(routes: list[Route], settings: EdgeSettings) -> list[str]:
    """tcp routes asking for the public port Caddy listens on (`edge.http_port`,
    `edge.https_port`): HAProxy could not bind it."""
    taken = {settings.http_port: "HTTP", settings.https_port: "HTTPS"}
    return [f"route {r.name!r}: port: {r.port} is the edge's {taken[r.port]} port "
            "(http and https routes)" for r in tcp_routes(routes) if r.port in taken]


def servable_tcp(fixed: list[Route], wanted: list[Route], settings: EdgeSettings,
                 ) -> tuple[list[Route], dict[str, str]]:
    """The tcp routes of `wanted` HAProxy can serve beside `fixed` (every route the edge
    serves, any protocol), and why each other one is left out (name -> the first problem): a
    route whose public port another route or the edge's HTTP(S) port took, one with a clashing
    name."""
    kept: list[Route] = []
    left_out: dict[str, str] = {}
    for route in wanted:
        problems = port_problems([route], settings) + validate_routes([*fixed, *kept, route])
        if problems:
            left_out[route.name] = problems[0]
        else:
            kept.append(route)
    return kept, left_out
