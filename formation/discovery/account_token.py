"""The account invite token: what a person needs to join an account from their laptop.

    "FMA1" + base32(pin(16) ‖ secret(16) ‖ expires_s(4) ‖ len(1) account ‖ endpoint... ‖ check(3))

The same form as the node invite token (token.py: Crockford base32 in groups of four, the
admin node's pin, a secret, the endpoints, a check), with its own prefix and contexts so one
kind of token is never taken for the other, and the account's name, so the person sees what
they join before any network contact.

- pin: the first 16 bytes of SHA-256 of the inviting admin node's key. The joining side trusts
  an endpoint only when the key it answers with hashes to the pin.
- secret: 16 random bytes; SHA-256(SEED_CONTEXT ‖ secret) seeds the invite's one-time Ed25519
  key, whose public half the `account.invite` op holds. Its signature over (network, account,
  the person's key) is the redeem's proof (node/state/account_invites.py).
- expires_s: as the invite op's until_ms, in seconds (the op's figure binds).
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass
from functools import cached_property

from nacl.signing import SigningKey

from formation.discovery.token import (
    GROUP,
    MAX_ENDPOINTS,
    PIN_BYTES,
    SECRET_BYTES,
    TokenError,
    base32,
    pack_endpoint,
    pin_of,
    read_base32,
    unpack_endpoint,
)

PREFIX = "FMA1"
SEED_CONTEXT = b"formation-account-invite-seed-v1\x00"
CHECK_CONTEXT = b"formation-account-invite-token-v1\x00"
PROOF_CONTEXT = b"formation-account-invite-proof-v1\x00"
CHECK_BYTES = 3
_ACCOUNT = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_FIXED = PIN_BYTES + SECRET_BYTES + 4


def proof_message(network: bytes, account: str, key_hex: str) -> bytes:
    """What the invite key signs in an account.redeem (node/state/account_invites.py): the
    network, the account and the key that joins it, so a relaying node cannot swap its own
    key in."""
    name = account.encode()
    return PROOF_CONTEXT + network + bytes([len(name)]) + name + bytes.fromhex(key_hex)


def seed_of(secret: bytes) -> bytes:
    return hashlib.sha256(SEED_CONTEXT + secret).digest()


@dataclass(frozen=True)
class AccountToken:
    pin: bytes
    secret: bytes
    expires_s: int
    account: str
    endpoints: tuple[str, ...]

    @cached_property
    def invite_key(self) -> SigningKey:
        return SigningKey(seed_of(self.secret))

    @property
    def invite_key_hex(self) -> str:
        return bytes(self.invite_key.verify_key).hex()

    def matches(self, node_key: bytes) -> bool:
        return pin_of(node_key) == self.pin

    def body(self) -> bytes:
        name = self.account.encode()
        return (self.pin + self.secret + struct.pack(">I", self.expires_s) + bytes([len(name)])
                + name + b"".join(pack_endpoint(e) for e in self.endpoints))

    def encode(self) -> str:
        """Grouped for reading and typing: FMA1-XXXX-XXXX-..."""
        body = self.body()
        text = PREFIX + base32(body + _check(body))
        return "-".join(text[i:i + GROUP] for i in range(0, len(text), GROUP))


def new_token(endpoints: list[str] | tuple[str, ...], admin_key: bytes, expires_s: int,
              account: str, secret: bytes) -> AccountToken:
    """Raises TokenError for no endpoint or one that cannot be carried."""
    if not _ACCOUNT.match(account):
        raise TokenError(f"token: account {account[:64]!r}: expected an account name")
    token = AccountToken(pin_of(admin_key), secret, expires_s, account,
                         tuple(endpoints[:MAX_ENDPOINTS]))
    if not token.endpoints:
        raise TokenError("token: no endpoint to carry")
    token.body()
    return token


def _check(body: bytes) -> bytes:
    return hashlib.sha256(CHECK_CONTEXT + body).digest()[:CHECK_BYTES]


def decode(text: str) -> AccountToken:
    """Parses a token as typed or pasted (case, spaces and dashes do not matter); anything
    wrong is a TokenError in one line, before any network contact."""
    typed = "".join(c.upper() for c in text if not (c.isspace() or c == "-"))
    if not typed:
        raise TokenError("token: empty (expected FMA1-..., as `formation account invite` "
                         "prints)")
    if typed.startswith("FMN"):
        raise TokenError("token: a node invite (FMN2-...): use it with `formation join` on "
                         "the host; `account join` takes an account invite (FMA1-...)")
    if not typed.startswith(PREFIX):
        raise TokenError(f"token: expected it to start with {PREFIX} (as `formation account "
                         f"invite` prints), got {typed[:len(PREFIX)]!r}")
    data = read_base32(list(enumerate(typed[len(PREFIX):], len(PREFIX) + 1)), PREFIX,
                       _FIXED + 2 + CHECK_BYTES)
    body, check = data[:-CHECK_BYTES], data[-CHECK_BYTES:]
    if _check(body) != check:
        raise TokenError("token: checksum does not match: a character is mistyped, missing or "
                         "extra")
    return _parse(body)


def _parse(body: bytes) -> AccountToken:
    pin, secret = body[:PIN_BYTES], body[PIN_BYTES:PIN_BYTES + SECRET_BYTES]
    (expires_s,) = struct.unpack(">I", body[PIN_BYTES + SECRET_BYTES:_FIXED])
    size = body[_FIXED]
    account = body[_FIXED + 1:_FIXED + 1 + size].decode("ascii", "replace")
    if size == 0 or len(account) != size or not _ACCOUNT.match(account):
        raise TokenError("token: the account name is cut short or malformed")
    rest = body[_FIXED + 1 + size:]
    endpoints: list[str] = []
    while rest:
        if len(endpoints) == MAX_ENDPOINTS:
            raise TokenError(f"token: more than {MAX_ENDPOINTS} endpoints")
        endpoint, rest = unpack_endpoint(rest, len(endpoints) + 1)
        endpoints.append(endpoint)
    if not endpoints:
        raise TokenError("token: no endpoint")
    return AccountToken(pin, secret, expires_s, account, tuple(endpoints))
