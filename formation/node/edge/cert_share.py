"""What this edge does for each https host when the edges share certificates (state/cert_rules.py,
docs/operations.md "Sharing certificates between edges"): a pure value the Caddy config is made
from (caddy_config.py), and the pure decision that makes it from the replicated state.

- `issuer_of`: one edge per host, by rendezvous hashing of the host over the live edges' keys:
  every node computes the same choice from the same view, an edge that comes or goes moves only
  the hosts it wins or won, and no coordination is needed.
- The issuer's Caddy asks the CA for its hosts (HTTP-01 only: the challenge must be answerable
  through any edge); the others forward `/.well-known/acme-challenge/` for those hosts to the
  issuer over the mesh, never ask the CA for them, and serve the certificate the issuer
  published, whose key was sealed to them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LoadedCert:
    """A certificate another edge published, with its opened key (PEM); never logged."""

    host: str
    cert_pem: str
    key_pem: str = field(repr=False)
    not_after: int = 0


@dataclass(frozen=True)
class TlsShare:
    """`issue`: hosts this edge obtains from the CA; `forward`: host -> `addr:port` of its
    issuer's HTTP port (the ACME challenges); `load`: certificates published by the issuers."""

    issue: frozenset[str] = frozenset()
    forward: tuple[tuple[str, str], ...] = ()
    load: tuple[LoadedCert, ...] = ()


def issuer_of(host: str, edges: list[str] | set[str]) -> str | None:
    """The edge (key hex) that obtains `host`'s certificate: the highest SHA-256 of host and key
    (rendezvous hashing); None when there is no edge."""
    def weight(key: str) -> bytes:
        return hashlib.sha256(f"{host}\0{key}".encode()).digest()
    return max(sorted(edges), key=weight, default=None)


def mesh_dial(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
