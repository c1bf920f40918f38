"""The `.fog` part of Caddy's config: https routes whose host ends in `.fog` get certificates
from the network CA through Caddy's internal issuer, never from ACME (no public CA can vouch for
a name inside the mesh, and asking one would only spend the rate limit on failures).

- `pki.certificate_authorities.<id>.root` names the root certificate and key files the edge
  wrote from the `ca.set` op (fog_ca_feed.py); Caddy makes its own intermediate from it and
  keeps it in its storage. The id carries the root's fingerprint, so a rotated root never
  meets the intermediate of the previous one.
- One automation policy per config lists the `.fog` hosts as subjects with the internal issuer
  of that CA; it comes before the catch-all ACME policy (caddy_config._issuer), which is left
  to the ACME parts of the config.
- No network CA yet, or its key not sealed to this edge: Caddy's own per-edge `local` CA signs
  them (served, but trusted by nobody) until `formation ca init` / `ca reseal`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from formation.node.edge.routes import Route

LOCAL_CA = "local"  # Caddy's default internal CA (caddy_config's pki section names it too)
FOG_SUFFIX = ".fog"


def is_fog(host: str) -> bool:
    """A name inside the mesh: its certificate comes from the network CA, not from ACME."""
    return host.endswith(FOG_SUFFIX)


@dataclass(frozen=True)
class FogCaFiles:
    """The network CA as this edge's engine reads it: files under run_dir, mode 0600."""

    fingerprint: str
    root_cert: Path
    root_key: Path

    @property
    def ca_id(self) -> str:
        return f"fog-{self.fingerprint[:16]}"


def fog_hosts(routes: list[Route]) -> list[str]:
    return sorted({r.host for r in routes if r.protocol == "https" and is_fog(r.host)})


def fog_policies(routes: list[Route], fog: FogCaFiles | None) -> list[dict[str, Any]]:
    """The automation policy of the `.fog` hosts (none when no https route names one)."""
    hosts = fog_hosts(routes)
    if not hosts:
        return []
    ca_id = fog.ca_id if fog is not None else LOCAL_CA
    return [{"subjects": hosts, "issuers": [{"module": "internal", "ca": ca_id}]}]


def fog_authorities(fog: FogCaFiles | None) -> dict[str, Any]:
    """The network CA as a Caddy pki authority (empty when the edge holds no key)."""
    if fog is None:
        return {}
    return {fog.ca_id: {
        "name": "Formation network CA",
        "install_trust": False,
        "root": {"certificate": str(fog.root_cert), "private_key": str(fog.root_key),
                 "format": "pem_file"},
    }}
