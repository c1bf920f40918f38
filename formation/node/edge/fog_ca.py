"""The network CA for `.fog` names: making its root, choosing who holds its key, sealing it.

An ECDSA P-256 root (every TLS client and Caddy's internal issuer take it; Ed25519 roots are
refused by browsers), valid for ten years, constrained to sign only `.fog` names
(NameConstraints: a leaked edge key cannot mint a certificate for a public domain that a VM
trusting this root would accept). Caddy makes its own intermediate from it on each edge.

The private key is given, sealed, to every edge (they issue) and every admin (they re-seal it
to a new edge): `recipients`. Nothing here talks to a node: commands/ca.py writes the op."""

from __future__ import annotations

import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from formation.identity.sealing import seal_to
from formation.node.state.capability_rules import EDGE, of

ROOT_YEARS = 10


def make_root(network: str) -> tuple[str, str]:
    """(root certificate PEM, PKCS#8 private key PEM) of a new network CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Formation"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"{network} network CA")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365 * ROOT_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.NameConstraints(permitted_subtrees=[x509.DNSName("fog")],
                                            excluded_subtrees=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert_pem, key_pem


def key_matches(cert_pem: str, key_pem: str) -> bool:
    """Whether `key_pem` is the private key of `cert_pem` (a re-seal must not swap the key)."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    return bool(cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        == key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


def recipients(nodes: list[dict[str, Any]]) -> list[str]:
    """Keys of the nodes that get the CA key: edges and admins (the nodes view's members)."""
    return sorted(str(n["key"]) for n in nodes
                  if n.get("roles") and (EDGE in of(n) or "admin" in n.get("roles", [])))


def seal_keys(key_pem: str, to: list[str]) -> dict[str, str]:
    """{node key: the CA key sealed to it} for each recipient."""
    return {node: seal_to(node, key_pem.encode()) for node in sorted(to)}


def missing(ca: dict[str, Any] | None, nodes: list[dict[str, Any]]) -> list[str]:
    """Recipients the current ca.set does not seal to (a new edge or admin): `ca reseal`."""
    if ca is None:
        return []
    held = set(ca.get("keys") or {})
    return [k for k in recipients(nodes) if k not in held]
