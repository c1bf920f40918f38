"""The network CA in the store: `ca.set` {root_pem, keys: {node key hex: sealed private key}}.

`.fog` names are inside the mesh, where no public CA can vouch for them, so the network has its
own CA (issue 19 item 4). Its root certificate is public (every VM trusts it through
cloud-init); its private key travels only sealed (formation/identity/sealing.py) to the nodes
that must sign with it: the edges, which issue `.fog` certificates through Caddy's internal
issuer, and the admins, so another admin can re-seal it to a new edge (`formation ca reseal`).

Rules (judged in the op's causal past, like every rule): only a network admin writes it; each
recipient is a current member; the root is one PEM certificate; sizes are bounded (a hostile
admin cannot make every replica store megabytes per op). The view is one register per field,
the later write by (HLC, id) wins: a re-seal and a new root are the same op kind.
Each check returns None or (reason, message), like tenant_rules.py; rules.py raises."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

from formation.node.state.authority import Authority
from formation.node.state.op import Op

KIND = "ca.set"
COLLECTION = "ca"
KEY = "network"  # the view's one record: the network has one CA at a time
MAX_ROOT_PEM = 2048  # op.MAX_STRING_BYTES; a P-256 root is ~800 characters
MAX_SEALED = 512  # base64 of a sealed PEM key: a P-256 PKCS#8 key seals to 388
MAX_RECIPIENTS = 20  # ~460 bytes each: 20 fit op.MAX_PAYLOAD_BYTES beside the root
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_PEM = re.compile(r"^-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=\n]+)\n-----END CERTIFICATE-----"
                  r"\n?$")
Problem = tuple[str, str] | None


def root_der(pem: str) -> bytes | None:
    """The DER bytes of a one-certificate PEM text, None when it is not one."""
    match = _PEM.match(pem)
    if match is None:
        return None
    try:
        return base64.b64decode(match.group(1).replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return None


def fingerprint(pem: str) -> str:
    """SHA-256 of the root's DER, hex: what a person compares before trusting it."""
    der = root_der(pem)
    return hashlib.sha256(der if der is not None else pem.encode()).hexdigest()


def _is_sealed(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= MAX_SEALED


def problem(op: Op, auth: Authority, author: str) -> Problem:
    """Why `op` (a ca.set by `author`) is refused, or None."""
    p = op.payload
    extra = set(p) - {"root_pem", "keys"}
    if extra:
        return ("invalid", f"payload.{sorted(extra)[0]}: not a field of this kind")
    pem = p.get("root_pem")
    if not (isinstance(pem, str) and len(pem) <= MAX_ROOT_PEM and root_der(pem)):
        return ("invalid", "payload.root_pem: expected one PEM certificate (the network CA's "
                f"root) up to {MAX_ROOT_PEM} characters")
    keys = p.get("keys")
    if not (isinstance(keys, dict) and 0 < len(keys) <= MAX_RECIPIENTS
            and all(isinstance(k, str) and _HEX64.match(k) for k in keys)
            and all(_is_sealed(v) for v in keys.values())):
        return ("invalid", f"payload.keys: expected 1 to {MAX_RECIPIENTS} node keys (64 hex) "
                f"each mapped to the CA key sealed to it (base64, up to {MAX_SEALED})")
    if not auth.is_admin(author):
        return ("unauthorized", f"{KIND}: only a network admin may do this")
    strangers = sorted(k for k in keys if not auth.is_member(k))
    if strangers:
        return ("invalid", f"payload.keys: {strangers[0][:16]} is not a member of the network "
                "(the CA key is sealed only to members)")
    return None


def effects(op: Op) -> list[tuple[Any, ...]]:
    """One record: the root, its fingerprint, who holds the sealed key and who wrote it. All
    fields share the op's order, so a reader never mixes two ca.set ops."""
    p = op.payload
    return [("lww", COLLECTION, KEY, "root_pem", p["root_pem"]),
            ("lww", COLLECTION, KEY, "fingerprint", fingerprint(p["root_pem"])),
            ("lww", COLLECTION, KEY, "keys", dict(sorted(p["keys"].items()))),
            ("lww", COLLECTION, KEY, "set_by", op.author.hex())]


def current(view: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The `ca` view's record (None: the network has no CA)."""
    for record in view:
        if record.get("key") == KEY and isinstance(record.get("root_pem"), str):
            return record
    return None


def root_of(view: list[dict[str, Any]]) -> str | None:
    """The network CA's root PEM (what VMs trust), None when the network has none."""
    ca = current(view)
    return str(ca["root_pem"]) if ca is not None else None
