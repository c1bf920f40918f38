"""The invite token: everything a joining host needs, signed by the admin that made it.

    "fmn1" + base64url(cbor([body, signature]))   (no padding)
    body = [1, network(16), invite op id(32), token seed(32), [endpoints], admin key(32),
            expires_ms]

The seed is the secret half of the invite's one-time key (the invite op holds its public key):
whoever holds the whole token can prove it, a part of it proves nothing. The admin signs
TOKEN_CONTEXT || body with its node key, which the token carries (people compare its
fingerprint): the joiner checks the signature before contacting anyone, so a changed byte
anywhere (an endpoint too) is caught at once, and then requires the endpoint to answer with
that key."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

import cbor2
from nacl.exceptions import BadSignatureError
from nacl.exceptions import ValueError as NaclValueError
from nacl.signing import VerifyKey

from formation.errors import FormationError

PREFIX = "fmn1"
VERSION = 1
TOKEN_CONTEXT = b"formation-invite-token-v1\x00"
MAX_ENDPOINTS = 8
_ENDPOINT = re.compile(r"^[A-Za-z0-9.\-]{1,253}:[0-9]{1,5}$|^\[[0-9a-fA-F:.]{2,45}\]:[0-9]{1,5}$")


class TokenError(FormationError):
    """A token that cannot be used, with the reason in words."""


def fingerprint(public_key: bytes) -> str:
    """As `formation status` shows node keys: SHA-256, first 16 bytes, grouped."""
    digest = hashlib.sha256(public_key).hexdigest()[:32]
    return ":".join(digest[i:i + 4] for i in range(0, 32, 4))


@dataclass(frozen=True)
class InviteToken:
    network: bytes
    invite: bytes
    seed: bytes
    endpoints: tuple[str, ...]
    admin_key: bytes
    expires_ms: int
    signature: bytes = b""

    def body(self) -> bytes:
        return cbor2.dumps([VERSION, self.network, self.invite, self.seed, list(self.endpoints),
                            self.admin_key, self.expires_ms], canonical=True)

    def encode(self) -> str:
        raw = cbor2.dumps([self.body(), self.signature], canonical=True)
        return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def verify(self) -> None:
        """Raises TokenError unless the admin key in the token signed it."""
        try:
            VerifyKey(self.admin_key).verify(TOKEN_CONTEXT + self.body(), self.signature)
        except (BadSignatureError, NaclValueError):
            raise TokenError("token: the admin's signature does not verify (tampered or "
                             "incomplete token)") from None


def sign(token: InviteToken, sign_fn) -> InviteToken:
    """`sign_fn(message) -> 64-byte signature`, the admin node's key."""
    signature = sign_fn(TOKEN_CONTEXT + token.body())
    return InviteToken(token.network, token.invite, token.seed, token.endpoints,
                       token.admin_key, token.expires_ms, bytes(signature))


def decode(text: str) -> InviteToken:
    """Parses a token; a damaged or cut one gets a TokenError saying so (no traceback)."""
    text = "".join(text.split())
    bad = TokenError("token: not a complete formation invite token (expected fmn1..., as "
                     "printed by `formation invite create`)")
    if not text.startswith(PREFIX):
        raise bad
    try:
        payload = text[len(PREFIX):]
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        body_raw, signature = cbor2.loads(raw)
        body = cbor2.loads(body_raw)
        version, network, invite, seed, endpoints, admin, expires = body
    except Exception:
        raise bad from None
    if version != VERSION:
        raise TokenError(f"token: version {version!r}, this node understands {VERSION}")
    ok = (isinstance(network, bytes) and len(network) == 16 and isinstance(invite, bytes)
          and len(invite) == 32 and isinstance(seed, bytes) and len(seed) == 32
          and isinstance(admin, bytes) and len(admin) == 32 and isinstance(expires, int)
          and isinstance(signature, bytes) and len(signature) == 64
          and isinstance(endpoints, list) and 0 < len(endpoints) <= MAX_ENDPOINTS
          and all(isinstance(e, str) and _ENDPOINT.match(e) for e in endpoints))
    if not ok:
        raise bad
    token = InviteToken(network, invite, seed, tuple(endpoints), admin, expires, signature)
    if token.body() != body_raw or token.encode() != text:
        raise bad  # not the canonical form (CBOR or base64 padding bits): re-encoded or changed
    return token
