"""Routes -> Caddy's JSON config: a pure function, so what the edge will serve is testable
without a process, and the engine diffs two of them to change only what changed.

Shape (Caddy 2.6, Debian):
- `edge_http` listens on the HTTP port: the http routes, the ACME HTTP-01 answers, and the
  redirects to HTTPS that Caddy's automatic HTTPS appends for the https routes' hosts.
- `edge_https` listens on the HTTPS port: the https routes; their hosts get certificates from
  the ACME issuer the settings name (one catch-all policy, so adding a route does not touch the
  TLS app).
- Each route is one Caddy route with `@id` `edge-route-<name>`: a host matcher and a
  `reverse_proxy` with round-robin, active health checks (the engine's), passive health and
  retries on refused connections, so a dead backend costs no failed request.
- Per-route metrics: Caddy 2.6's Prometheus metrics are per server and handler, not per host,
  so each route's access log goes to a logger named after the route (`logger_names`), all
  streamed as JSON lines to a unix socket the node reads (metrics.py).
- The admin API listens on a unix socket only.
- Certificates shared between edges (`share`, cert_share.py): the ACME policy asks over HTTP-01
  only, hosts another edge issues are skipped by automatic HTTPS and served from the certificate
  it published (`tls.certificates.load_pem`), and their ACME challenges are forwarded to it
  (`edge-acme-<host>` routes on the HTTP server). Without `share` every edge asks for its own."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from formation.node.edge.cert_share import TlsShare
from formation.node.edge.fog_ca_caddy import FogCaFiles, fog_authorities, fog_policies, is_fog
from formation.node.edge.routes import Route
from formation.node.edge.settings import EdgeSettings

HTTP_SERVER = "edge_http"
HTTPS_SERVER = "edge_https"
ROUTE_ID_PREFIX = "edge-route-"
ACME_ROUTE_PREFIX = "edge-acme-"
ACME_CHALLENGE_PATH = "/.well-known/acme-challenge/*"
LOGGER_PREFIX = "edge.route."  # Caddy names the access logger http.log.access.<this><name>
ACCESS_LOGGER = "http.log.access"
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


@dataclass(frozen=True)
class EnginePaths:
    """Where the engine's files live: its admin socket, the node's access-log socket, the
    certificate storage (the part shared between edges, see docs/operations.md), and the network
    CA's root and key for `.fog` names (fog_ca_caddy.py; None until this edge holds them)."""

    run_dir: Path
    fog: FogCaFiles | None = None  # the network CA's files, when this edge holds its key

    @property
    def admin_socket(self) -> Path:
        return self.run_dir / "admin.sock"

    @property
    def access_socket(self) -> Path:
        return self.run_dir / "access.sock"

    @property
    def storage(self) -> Path:
        return self.run_dir / "caddy"

    @property
    def config_file(self) -> Path:
        return self.run_dir / "caddy.json"


def route_id(route: Route) -> str:
    return f"{ROUTE_ID_PREFIX}{route.name}"


def _seconds(value: float) -> str:
    return f"{round(value * 1000)}ms"


def _handler(route: Route, settings: EdgeSettings) -> dict[str, Any]:
    if not route.backends:  # the instances are not running: say so rather than 502
        return {"handler": "static_response", "status_code": 503,
                "body": f"no backend for {route.host}\n", "close": True}
    return {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": b.dial} for b in route.backends],
        "load_balancing": {
            "selection_policy": {"policy": "round_robin"},
            "try_duration": _seconds(settings.try_duration_s),
            "try_interval": "100ms",
        },
        "health_checks": {
            "active": {"uri": settings.health_path,
                       "interval": _seconds(settings.health_interval_s),
                       "timeout": _seconds(settings.health_timeout_s)},
            # a refused connection takes the backend out at once, until the active check
            # (or this duration) lets it back
            "passive": {"fail_duration": _seconds(max(2.0, 2 * settings.health_interval_s)),
                        "max_fails": 1},
        },
    }


def caddy_route(route: Route, settings: EdgeSettings) -> dict[str, Any]:
    """One route as Caddy's route object, addressable by its @id."""
    return {"@id": route_id(route), "match": [{"host": [route.host]}],
            "handle": [_handler(route, settings)], "terminal": True}


def _ordered(routes: list[Route]) -> list[Route]:
    """Exact hosts before wildcards (Caddy takes the first matching route), then by name so
    the order is the same on every edge and for every call."""
    return sorted(routes, key=lambda r: (r.host.startswith("*."), r.host, r.name))


def _listen(settings: EdgeSettings, port: int) -> list[str]:
    if not settings.listen:
        return [f":{port}"]
    return [f"[{a}]:{port}" if ":" in a else f"{a}:{port}" for a in settings.listen]


def _server(routes: list[Route], settings: EdgeSettings, port: int) -> dict[str, Any]:
    server: dict[str, Any] = {
        "listen": _listen(settings, port),
        "routes": [caddy_route(r, settings) for r in _ordered(routes)],
    }
    if settings.route_metrics:
        # hosts without a route (scanners, typos) are not logged: nothing of theirs is counted
        server["logs"] = {"logger_names": {r.host: f"{LOGGER_PREFIX}{r.name}" for r in routes},
                          "skip_unmapped_hosts": True}
    return server


def _issuer(settings: EdgeSettings, share: TlsShare | None = None) -> dict[str, Any]:
    issuer: dict[str, Any] = {"module": "acme", "ca": settings.acme_directory or LETS_ENCRYPT}
    if settings.acme_email:
        issuer["email"] = settings.acme_email
    if settings.acme_ca_root is not None:
        issuer["trusted_roots_pem_files"] = [str(settings.acme_ca_root)]
    if share is not None:  # the CA may validate through any edge: only HTTP-01 is forwarded
        issuer["challenges"] = {"tls-alpn": {"disabled": True}}
    return issuer


def _tls_app(settings: EdgeSettings, share: TlsShare | None, https: list[Route],
             fog: FogCaFiles | None) -> dict[str, Any]:
    """The `.fog` hosts' policy (the network CA) before the ACME one, and the certificates
    other edges published (shared TLS)."""
    policies = [*fog_policies(https, fog), {"issuers": [_issuer(settings, share)]}]
    tls: dict[str, Any] = {"automation": {"policies": policies}}
    if share is not None and share.load:
        tls["certificates"] = {"load_pem": [
            {"certificate": c.cert_pem, "key": c.key_pem, "tags": [f"shared-{c.host}"]}
            for c in sorted(share.load, key=lambda c: c.host)]}
    return tls


def acme_forward_routes(share: TlsShare | None) -> list[dict[str, Any]]:
    """On the HTTP server, before the routes: the ACME challenges of hosts another edge
    issues go to that edge over the mesh (Caddy answers its own challenges before any route,
    so the issuer's are answered by the issuer)."""
    if share is None:
        return []
    return [{"@id": f"{ACME_ROUTE_PREFIX}{host}",
             "match": [{"host": [host], "path": [ACME_CHALLENGE_PATH]}],
             "handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": dial}]}],
             "terminal": True}
            for host, dial in sorted(share.forward)]


def skip_shared(server: dict[str, Any], https: list[Route],
                share: TlsShare | None) -> dict[str, Any]:
    """When sharing, the HTTPS server asks the CA only for the hosts this edge issues: every
    other host (another edge's, one whose issuer is not decided yet, a wildcard, which HTTP-01
    cannot obtain) is left to the certificates loaded, so no race asks the CA twice."""
    public = {r.host for r in https if not is_fog(r.host)}  # .fog: each edge's own, never shared
    skip = sorted(public - share.issue) if share is not None else []
    if skip:
        server["automatic_https"] = {"skip_certificates": skip}
    return server


def caddy_config(routes: list[Route], settings: EdgeSettings, paths: EnginePaths,
                 share: TlsShare | None = None) -> dict[str, Any]:
    """The whole engine config for `routes` (already valid: routes.validate_routes). tcp routes
    are left out: Debian's caddy 2.6 has no layer4 app (see unserved). `share`: this edge's
    part in the certificates shared between edges (None: it asks the CA for every host)."""
    http = [r for r in routes if r.protocol == "http"]
    https = [r for r in routes if r.protocol == "https"]
    logs: dict[str, Any] = {"default": {"exclude": [ACCESS_LOGGER], "level": "INFO"}}
    if settings.route_metrics:
        logs["edge_routes"] = {
            "writer": {"output": "net", "address": f"unix/{paths.access_socket}"},
            "encoder": {"format": "json"},
            "include": [ACCESS_LOGGER],
        }
    http_server = _server(http, settings, settings.http_port)
    http_server["routes"] = acme_forward_routes(share) + http_server["routes"]
    return {
        "admin": {"listen": f"unix/{paths.admin_socket}", "origins": ["localhost"],
                  "config": {"persist": False}},
        "storage": {"module": "file_system", "root": str(paths.storage)},
        "logging": {"logs": logs},
        "apps": {
            "http": {
                "http_port": settings.http_port,
                "https_port": settings.https_port,
                "grace_period": "10s",
                "servers": {
                    HTTP_SERVER: http_server,
                    HTTPS_SERVER: skip_shared(_server(https, settings, settings.https_port),
                                              https, share),
                },
            },
            "tls": _tls_app(settings, share, https, paths.fog),
            "pki": {"certificate_authorities": {"local": {"install_trust": False},
                                                **fog_authorities(paths.fog)}},
        },
    }


def unserved(routes: list[Route]) -> list[str]:
    """Routes this engine cannot serve, one line each (tcp: no layer4 app in Debian's caddy)."""
    return [f"route {r.name!r}: protocol: tcp routes need Caddy's layer4 app, which Debian's "
            "caddy 2.6 does not have" for r in routes if r.protocol == "tcp"]
