"""The certificates this edge's Caddy obtained, read from its storage (`run_dir/caddy`,
file_system module): `certificates/<issuer>/<host>/<host>.crt` and `.key`, as certmagic
writes them. Read by the issuer after issuance and renewal to publish them (cert_sync.py), and
written when an edge becomes a host's issuer with a certificate already published (`seed`).
Blocking file reads: call through asyncio.to_thread."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

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


def issuer_dir(directory: str) -> str:
    """The directory certmagic (Caddy 2.6's certificate manager) keeps an ACME CA's
    certificates under: the directory URL's host and path, '/' as '-', made storage-safe
    (':' as '-'), e.g. acme-v02.api.letsencrypt.org-directory."""
    url = urlsplit(directory)
    key = url.netloc
    path = url.path.replace("/", "-").replace("\\", "-").strip("-")
    if path:
        key += f"-{path}"
    key = key.lower().strip().replace(" ", "_").replace("+", "_plus_").replace(
        "*", "wildcard_").replace(":", "-").replace("..", "")
    return re.sub(r"[^\w@.-]", "", key)


def seed(storage: Path, directory: str, host: str, cert_pem: str, key_pem: str) -> Path:
    """Puts a certificate another edge published where this edge's Caddy looks before it asks
    the CA, so an edge that becomes a host's issuer starts from it (and renews it when due)
    instead of asking the CA at once. Returns the certificate's file."""
    site = storage / "certificates" / issuer_dir(directory) / host
    site.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, text, mode in ((f"{host}.key", key_pem, 0o600), (f"{host}.crt", cert_pem, 0o644),
                             (f"{host}.json", json.dumps({"sans": [host], "issuer_data": {}}),
                              0o644)):
        tmp = site / f".{name}.tmp"
        tmp.write_text(text)
        tmp.chmod(mode)
        tmp.replace(site / name)
    return site / f"{host}.crt"
