"""The edge's settings (`edge:` in the node's config once the lead wires it into NodeSettings).
ACME is settings, not code: the directory URL (Let's Encrypt in production, pebble in tests),
the contact, and a CA root to trust for the directory's own HTTPS (pebble's test CA)."""

from pathlib import Path

from pydantic import Field

from formation.config.settings import IpAddress, Strict


class EdgeSettings(Strict):
    enabled: bool = Field(False, description="run the proxy engine (nodes with the edge role)")
    caddy: str = Field("caddy", description="the Caddy binary (Debian's caddy 2.6)")
    run_dir: Path | None = Field(
        None, description="the engine's sockets, config and certificate storage; "
        "default: data_dir/edge")
    listen: list[IpAddress] = Field(
        default_factory=list, description="addresses the public ports are bound to; "
        "empty: every address")
    http_port: int = Field(80, ge=1, le=65535, description="public HTTP (and ACME HTTP-01)")
    https_port: int = Field(443, ge=1, le=65535, description="public HTTPS (and TLS-ALPN-01)")
    health_interval_s: float = Field(
        1.0, gt=0, le=3600, description="active health check period per backend")
    health_timeout_s: float = Field(1.0, gt=0, le=3600)
    health_path: str = Field("/", pattern=r"^/", description="HTTP path the checks GET")
    try_duration_s: float = Field(
        5.0, ge=0, le=600, description="how long a request may be retried on other backends "
        "when one refuses the connection")
    acme_directory: str | None = Field(
        None, pattern=r"^https://", description="ACME directory URL; unset: Let's Encrypt")
    acme_email: str | None = Field(None, description="ACME account contact")
    acme_ca_root: Path | None = Field(
        None, description="PEM file of a CA to trust for the ACME directory's HTTPS "
        "(pebble's test CA); unset: the system's trust store")
    route_metrics: bool = Field(
        True, description="per-route requests, errors, latency and bytes: the engine logs "
        "every request to the node (bench/rplb.py measures what it costs)")
    restart_max_s: float = Field(
        30.0, gt=0, le=3600, description="the engine's restart back-off after crashes, at most")
