"""`cert.set`: an edge publishes the certificate it obtained for an https route's host, so the
other edges serve the same one and the CA is asked once for the network (docs/operations.md,
"Sharing certificates between edges").

Payload {host, route, edge, chain, not_after, keys}:
- `host` is an exact DNS name (ACME's HTTP-01 cannot issue wildcards) and `route` names a
  `route.set` op for that host with protocol https: a certificate only for a host some route
  names, so the store does not carry certificates for arbitrary names;
- `edge` names the `node.capabilities` op by which an admin made the author an edge. The edge
  capability is not an authority op (capability_rules.py), so a rule cannot ask the causal past
  whether the author is an edge *now*; referencing the grant proves it was made one by an admin,
  and the certs view (cert_view.py) serves only certificates whose author is an edge now. A
  member node that never was an edge is refused here, with one line;
- `chain` is the certificate chain as a list of DER certificates (leaf first; an op's strings
  and byte strings are at most 2 KiB each, a PEM leaf may not be) whose leaf names `host`;
  `not_after` is the leaf's expiry
  in Unix ms (checked against the certificate, so "later not_after wins" cannot be gamed by
  the number alone);
- `keys` maps each edge node's key (64 hex) to the certificate's private key sealed to it
  (formation.identity.sealing): every node reads the op, only the named edges can open theirs.
Sizes are bounded (a chain, a sealed key, the number of edges) to fit one op. Only member
nodes write it: an account's key is refused by tenant_rules (cert.set is not a tenant kind).

Each check returns None or (reason, message), like capability_rules.py; rules.py raises."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from formation.node.edge.routes import hostname_problem
from formation.node.state import capability_rules
from formation.node.state.authority import Authority
from formation.node.state.op import Op

KIND = "cert.set"
FIELDS = frozenset({"host", "route", "edge", "chain", "not_after", "keys"})
REF_FIELDS = ("route", "edge")
# An op's payload is at most 12 KiB (op.MAX_PAYLOAD_BYTES), so: a chain of at most 4
# certificates and 6 KiB of DER (Let's Encrypt's leaf and intermediate are ~2.5 KiB), an ECDSA
# key (Caddy's default, P-256: ~390 bytes sealed, in base64; an RSA key does not fit) for each
# of at most 12 edges. Beyond that the op's own bound refuses it, with one line too.
MAX_CHAIN = 4
MAX_CHAIN_BYTES = 6 * 1024
MAX_SEALED = 512
MAX_EDGES = 12
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
Problem = tuple[str, str] | None
GetOp = Callable[[bytes], Op]


def chain_pem(chain: list[bytes]) -> str:
    """The DER chain as the PEM text Caddy loads."""
    return "".join(x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode()
                   for der in chain)


def chain_der(pem: str) -> list[bytes]:
    """A PEM chain (Caddy's .crt file) as the op carries it."""
    return [c.public_bytes(Encoding.DER) for c in x509.load_pem_x509_certificates(pem.encode())]


def not_after_ms(cert: x509.Certificate) -> int:
    when = cert.not_valid_after_utc
    return int(when.replace(tzinfo=datetime.UTC).timestamp() * 1000)


def names_of(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [str(n).lower() for n in san.value.get_values_for_type(x509.DNSName)]


def _cert_problem(p: dict[str, Any]) -> Problem:
    chain = p.get("chain")
    if not (isinstance(chain, list) and 0 < len(chain) <= MAX_CHAIN
            and all(isinstance(c, bytes) for c in chain)
            and sum(map(len, chain)) <= MAX_CHAIN_BYTES):
        return ("invalid", f"payload.chain: expected 1 to {MAX_CHAIN} DER certificates, leaf "
                f"first, {MAX_CHAIN_BYTES} bytes at most")
    try:  # a hostile DER may fail anywhere in parsing (extensions are parsed lazily)
        leaf = x509.load_der_x509_certificate(chain[0])
        for der in chain[1:]:
            x509.load_der_x509_certificate(der)
        names, expiry = names_of(leaf), not_after_ms(leaf)
    except Exception:
        return ("invalid", "payload.chain: expected DER certificates (one does not parse)")
    if p["host"] not in names:
        return ("invalid", f"payload.chain: the certificate does not name {p['host']}")
    if p.get("not_after") != expiry:
        return ("invalid", "payload.not_after: expected the certificate's expiry in Unix ms "
                f"({expiry})")
    return None


def _keys_problem(keys: Any) -> Problem:
    if not (isinstance(keys, dict) and 0 < len(keys) <= MAX_EDGES
            and all(isinstance(k, str) and _HEX64.match(k) for k in keys)
            and all(isinstance(v, str) and 0 < len(v) <= MAX_SEALED for v in keys.values())):
        return ("invalid", f"payload.keys: expected 1 to {MAX_EDGES} edge node keys (64 hex) "
                f"each mapped to its sealed private key (base64, up to {MAX_SEALED} bytes)")
    return None


def problem(op: Op, auth: Authority, author: str, get_op: GetOp) -> Problem:
    """Why `op` (a cert.set by member node `author`) is refused, or None."""
    p = op.payload
    extra = set(p) - FIELDS
    if extra:
        return ("invalid", f"payload.{sorted(extra)[0]}: not a field of this kind")
    host = p.get("host")
    if hostname_problem(host) is not None or str(host).startswith("*."):
        return ("invalid", "payload.host: expected an exact DNS name like www.example.com "
                "(no wildcard: HTTP-01 cannot issue one)")
    found = _keys_problem(p.get("keys")) or _cert_problem(p)
    if found is not None:
        return found
    route = get_op(bytes.fromhex(p["route"]))
    if route.kind != "route.set" or route.payload.get("host") != host \
            or route.payload.get("protocol") != "https":
        return ("invalid", f"payload.route: does not name an https route.set for {host}")
    grant = get_op(bytes.fromhex(p["edge"]))
    if grant.kind != capability_rules.KIND or grant.payload.get("node") != author \
            or capability_rules.EDGE not in grant.payload.get("capabilities", []):
        return ("unauthorized", f"{KIND}: only an edge node may publish certificates "
                "(payload.edge: expected the node.capabilities op that made the author one)")
    if not auth.is_member(author):
        return ("unauthorized", f"{KIND}: only a member node may do this")
    return None


def effects(op: Op) -> list[tuple[Any, ...]]:
    """An element per op in the certs OR-set; cert_view.py keeps the best per host."""
    p = op.payload
    return [("add", "certs", p["host"], op.id,
             {"chain": p["chain"], "not_after": p["not_after"], "keys": p["keys"],
              "author": op.author.hex(), "hlc": list(op.hlc)})]
