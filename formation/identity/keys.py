"""Key derivation. One secret identifies the node everywhere: the Ed25519 seed signs operations and
requests, and its X25519 conversion is the node's WireGuard key."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from nacl import bindings
from nacl.signing import SigningKey, VerifyKey


def node_id_for(public_key: bytes) -> str:
    """Node ids are short, stable and typeable: base32 of a 15-byte BLAKE2b of the public key."""
    digest = hashlib.blake2b(public_key, digest_size=15, person=b"formation-node").digest()
    return "n" + base64.b32encode(digest).decode().lower()


def fingerprint(public_key: bytes) -> str:
    """A human-comparable fingerprint, grouped like SSH's: SHA256 of the key, first 16 bytes."""
    digest = hashlib.sha256(public_key).hexdigest()[:32]
    return ":".join(digest[i : i + 4] for i in range(0, 32, 4))


@dataclass(frozen=True, repr=False)
class NodeIdentity:
    """The node's keys. `repr` and `str` never show the seed, so a stray log line cannot leak it."""

    signing_key: SigningKey

    @classmethod
    def generate(cls) -> NodeIdentity:
        return cls(SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> NodeIdentity:
        return cls(SigningKey(seed))

    @property
    def seed(self) -> bytes:
        return bytes(self.signing_key)

    @property
    def verify_key(self) -> VerifyKey:
        return self.signing_key.verify_key

    @property
    def public_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @property
    def public_key_hex(self) -> str:
        return self.public_key.hex()

    @property
    def node_id(self) -> str:
        return node_id_for(self.public_key)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    @property
    def wireguard_private_key(self) -> str:
        """Base64 X25519 private key, as `wg` and the UAPI (in hex) expect."""
        secret = self.seed + self.public_key
        curve = bindings.crypto_sign_ed25519_sk_to_curve25519(secret)
        return base64.b64encode(curve).decode()

    @property
    def wireguard_public_key(self) -> str:
        curve = bindings.crypto_sign_ed25519_pk_to_curve25519(self.public_key)
        return base64.b64encode(curve).decode()

    def sign(self, message: bytes) -> bytes:
        return self.signing_key.sign(message).signature

    def __repr__(self) -> str:
        return f"NodeIdentity(node_id={self.node_id!r})"

    __str__ = __repr__
