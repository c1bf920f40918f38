"""The certificates this edge's Caddy obtained, read from its storage (`run_dir/caddy`,
file_system module): `certificates/<issuer>/<host>/<host>.crt` and `.key`, as certmagic
writes them. Read by the issuer after issuance and renewal to publish them (cert_publish.py).
Blocking file reads: call through asyncio.to_thread."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from formation.node.state.cert_rules import not_after_ms


@dataclass(frozen=True)
class Issued:
    host: str
    cert_pem: str
    key_pem: str = field(repr=False)
    not_after: int = 0


def issued(storage: Path, host: str) -> Issued | None:
    """The certificate for `host` in Caddy's storage with the latest expiry (any issuer
    directory: a changed ACME directory leaves the old one beside), or None."""
    best: Issued | None = None
    for crt in storage.glob(f"certificates/*/{host}/{host}.crt"):
        try:
            cert_pem = crt.read_text()
            key_pem = crt.with_suffix(".key").read_text()
            leaf = x509.load_pem_x509_certificates(cert_pem.encode())[0]
        except (OSError, ValueError, IndexError):  # being written, or not a certificate
            continue
        found = Issued(host, cert_pem, key_pem, not_after_ms(leaf))
        if best is None or found.not_after > best.not_after:
            best = found
    return best
