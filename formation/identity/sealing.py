"""Secrets for one node's eyes, carried in the replicated (public) state.

Every node can read every op, a hostile member included, so a secret that must travel through
the store (an edge's certificate key, the network CA's key) is sealed to each intended node's
key: an anonymous X25519 box (libsodium's sealed box) to the curve form of the node's Ed25519
key, the same conversion that gives its WireGuard key. No new key to distribute, and a node
that was not a recipient learns nothing but the length."""

from __future__ import annotations

import base64
import binascii

from nacl import bindings
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from formation.errors import FormationError
from formation.identity.keys import NodeIdentity


class SealError(FormationError):
    """A sealed text that is not for this node, or is damaged."""


def seal_to(node_key_hex: str, secret: bytes) -> str:
    """Base64 of `secret` sealed to the node whose Ed25519 public key is `node_key_hex`."""
    try:
        ed_public = bytes.fromhex(node_key_hex)
        curve = bindings.crypto_sign_ed25519_pk_to_curve25519(ed_public)
    except (ValueError, CryptoError) as exc:
        raise SealError(f"recipient: expected a 64-hex Ed25519 public key ({exc})") from None
    return base64.b64encode(SealedBox(PublicKey(curve)).encrypt(secret)).decode()


def open_sealed(identity: NodeIdentity, sealed: str) -> bytes:
    """The secret sealed to `identity` by seal_to; SealError when it was sealed to another."""
    curve = bindings.crypto_sign_ed25519_sk_to_curve25519(identity.seed + identity.public_key)
    try:
        return SealedBox(PrivateKey(curve)).decrypt(base64.b64decode(sealed, validate=True))
    except (CryptoError, binascii.Error, ValueError):
        raise SealError("sealed: not sealed to this node's key, or damaged") from None
