"""The invite token: what a joining host needs, short enough to type and to show as a small QR.

    "FMN2" + base32(pin(16) ‖ secret(16) ‖ expires_s(4) ‖ endpoint... ‖ check(3))

shown in groups of four joined by "-" (FMN2-K3QD-...). Base32 is Crockford's (0-9, A-Z without
I L O U): upper case and digits only, so a QR code holds it in alphanumeric mode, and a person
can type it; decoding ignores case, spaces and dashes and reads I/L as 1 and O as 0.

- pin: the first 16 bytes of SHA-256 of the admin's node key (the fingerprint people compare).
  A joiner trusts an endpoint only if the key its `GET /v1/discovery/hello` answers hashes to it;
  the admin's network id is learned from that pinned admin. No signature: whoever holds a token
  could hand out another one anyway, and the pin is what authenticates the admin.
- secret: 16 random bytes; SHA-256(SEED_CONTEXT ‖ secret) is the Ed25519 seed of the invite's
  one-time key, whose public half the `invite.create` op holds (`token_key`). The admin finds the
  invite by that key, so the token need not carry the invite op's id.
- expires_s: unsigned seconds since the epoch (the invite op holds the binding expiry).
- endpoint: 0x04 IPv4(4) port(2) | 0x06 IPv6(16) port(2) | 0x48 length(1) hostname port(2).
- check: the first 3 bytes of SHA-256(CHECK_CONTEXT ‖ everything before it): a typo is caught
  here, before any network contact.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from nacl.signing import SigningKey

from formation.errors import FormationError

PREFIX = "FMN2"
OLD_PREFIX = "fmn1"
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32
_VALUE = {c: i for i, c in enumerate(ALPHABET)} | {"I": 1, "L": 1, "O": 0}
GROUP = 4
PIN_BYTES = SECRET_BYTES = 16
CHECK_BYTES = 3
MAX_ENDPOINTS = 8
SEED_CONTEXT = b"formation-invite-seed-v2\x00"
CHECK_CONTEXT = b"formation-invite-token-v2\x00"
HANDSHAKE_CONTEXT = b"formation-invite-handshake-v2\x00"
_IPV4, _IPV6, _HOST = 0x04, 0x06, 0x48
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.\-]{0,251}[A-Za-z0-9])?$")
_FIXED = PIN_BYTES + SECRET_BYTES + 4
MIN_BYTES = _FIXED + 5 + CHECK_BYTES  # the shortest endpoint: a one-letter hostname


class TokenError(FormationError):
    """A token that cannot be used, with the reason in one line."""


def pin_of(public_key: bytes) -> bytes:
    return hashlib.sha256(public_key).digest()[:PIN_BYTES]


def format_pin(pin: bytes) -> str:
    """As the admin's fingerprint shows (formation.identity.keys.fingerprint), from the pin."""
    digest = pin.hex()
    return ":".join(digest[i:i + 4] for i in range(0, len(digest), 4))


def seed_of(secret: bytes) -> bytes:
    """The Ed25519 seed of the invite's one-time key (the secret is uniformly random, so one
    hash with a context is enough of a key derivation)."""
    return hashlib.sha256(SEED_CONTEXT + secret).digest()


def handshake_proof_message(network: bytes, token_key: bytes, node_key: str) -> bytes:
    """What the token key signs in the join handshake: binds the token to the node key that
    signs the request, before the joiner knows the invite op's id."""
    return HANDSHAKE_CONTEXT + network + token_key + bytes.fromhex(node_key)


@dataclass(frozen=True)
class InviteToken:
    pin: bytes
    secret: bytes
    endpoints: tuple[str, ...]
    expires_s: int

    @cached_property
    def seed(self) -> bytes:
        return seed_of(self.secret)

    @cached_property
    def token_key(self) -> bytes:
        return bytes(SigningKey(self.seed).verify_key)

    def matches(self, admin_key: bytes) -> bool:
        return pin_of(admin_key) == self.pin

    def body(self) -> bytes:
        return (self.pin + self.secret + struct.pack(">I", self.expires_s)
                + b"".join(pack_endpoint(e) for e in self.endpoints))

    def compact(self) -> str:
        """Without separators: the shortest form, for a QR code when it makes a smaller one."""
        return armor(self.body())

    def encode(self) -> str:
        """Grouped for reading and typing: FMN2-XXXX-XXXX-..."""
        text = self.compact()
        return "-".join(text[i:i + GROUP] for i in range(0, len(text), GROUP))


def new_token(endpoints: list[str] | tuple[str, ...], admin_key: bytes, expires_s: int,
              secret: bytes) -> InviteToken:
    """A token for the first MAX_ENDPOINTS endpoints; raises TokenError for one that cannot be
    carried (neither an IP address nor a hostname, or no port)."""
    token = InviteToken(pin_of(admin_key), secret, tuple(endpoints[:MAX_ENDPOINTS]), expires_s)
    if not token.endpoints:
        raise TokenError("token: no endpoint to carry")
    token.body()
    return token


# encoding -------------------------------------------------------------------------------------
def armor(body: bytes) -> str:
    """The prefix and the base32 of the body with its check bytes."""
    return PREFIX + base32(body + _check(body))


def _check(body: bytes) -> bytes:
    return hashlib.sha256(CHECK_CONTEXT + body).digest()[:CHECK_BYTES]


def base32(data: bytes) -> str:
    bits = len(data) * 8
    chars = -(-bits // 5)
    number = int.from_bytes(data, "big") << (chars * 5 - bits)
    return "".join(ALPHABET[(number >> (5 * (chars - 1 - i))) & 31] for i in range(chars))


def pack_endpoint(endpoint: str) -> bytes:
    host, port = _split(endpoint)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.match(host):
            raise TokenError(f"token: endpoint {endpoint!r}: expected an IP address or a "
                             "hostname with a port") from None
        return bytes([_HOST, len(host)]) + host.encode() + struct.pack(">H", port)
    tag = _IPV4 if ip.version == 4 else _IPV6
    return bytes([tag]) + ip.packed + struct.pack(">H", port)


def _split(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise TokenError(f"token: endpoint {endpoint!r}: expected HOST:PORT")
    return host, int(port)


# decoding -------------------------------------------------------------------------------------
def decode(text: str) -> InviteToken:
    """Parses a token as typed or pasted; anything wrong gets a TokenError saying what, in one
    line, before any network contact."""
    kept = [(i + 1, c.upper()) for i, c in enumerate(text) if not (c.isspace() or c == "-")]
    typed = "".join(c for _, c in kept)
    if not typed:
        raise TokenError("token: empty (expected FMN2-..., as `formation invite create` prints)")
    if "".join(c for c in text if not c.isspace()).startswith(OLD_PREFIX):
        raise TokenError("token: an old-format token (fmn1...) from an older formation; ask the "
                         "admin for a new one (FMN2-...)")
    if not typed.startswith(PREFIX):
        raise TokenError(f"token: expected it to start with {PREFIX} (as `formation invite "
                         f"create` prints), got {typed[:len(PREFIX)]!r}")
    data = read_base32(kept[len(PREFIX):], PREFIX, MIN_BYTES)
    body, check = data[:-CHECK_BYTES], data[-CHECK_BYTES:]
    if _check(body) != check:
        raise TokenError("token: checksum does not match: a character is mistyped, missing or "
                         "extra")
    return _parse(body)


def read_base32(kept: Sequence[tuple[int, str]], prefix: str, min_bytes: int) -> bytes:
    """The bytes a token's characters after its prefix hold (each with its position as typed,
    for the error); refuses a bad character, a token shorter than `min_bytes` and a length no
    token has, which the checksum would only call a mismatch. Shared with account_token.py."""
    number = 0
    for position, char in kept:
        if char not in _VALUE:
            raise TokenError(f"token: bad character {char!r} at position {position} (a token "
                             "has only digits and letters other than U)")
        number = number << 5 | _VALUE[char]
    chars = len(kept)
    length, spare = divmod(chars * 5, 8)
    minimum = len(prefix) + len(base32(bytes(min_bytes)))
    if chars + len(prefix) < minimum:
        raise TokenError(f"token: too short: {chars + len(prefix)} characters, a token has at "
                         f"least {minimum} (cut off?)")
    if spare >= 5 or number & ((1 << spare) - 1):
        raise TokenError(f"token: wrong length ({chars + len(prefix)} characters): a character "
                         "is missing or extra")
    return (number >> spare).to_bytes(length, "big")


def _parse(body: bytes) -> InviteToken:
    pin, secret = body[:PIN_BYTES], body[PIN_BYTES:PIN_BYTES + SECRET_BYTES]
    (expires_s,) = struct.unpack(">I", body[PIN_BYTES + SECRET_BYTES:_FIXED])
    endpoints: list[str] = []
    rest = body[_FIXED:]
    while rest:
        if len(endpoints) == MAX_ENDPOINTS:
            raise TokenError(f"token: more than {MAX_ENDPOINTS} endpoints")
        endpoint, rest = unpack_endpoint(rest, len(endpoints) + 1)
        endpoints.append(endpoint)
    return InviteToken(pin, secret, tuple(endpoints), expires_s)


def unpack_endpoint(data: bytes, number: int) -> tuple[str, bytes]:
    tag, start = data[0], 1
    if tag == _HOST:
        start, size = 2, data[1] if len(data) > 1 else 0
    elif tag in (_IPV4, _IPV6):
        size = 4 if tag == _IPV4 else 16
    else:
        raise TokenError(f"token: endpoint {number}: unknown kind {tag:#04x}")
    end = start + size
    if size == 0 or len(data) < end + 2:
        raise TokenError(f"token: endpoint {number} is cut short")
    raw, (port,), rest = data[start:end], struct.unpack(">H", data[end:end + 2]), data[end + 2:]
    if tag == _HOST:
        host = raw.decode("ascii", "replace")
        if not _HOSTNAME.match(host):
            raise TokenError(f"token: endpoint {number}: not a hostname")
    else:
        ip = ipaddress.ip_address(raw)
        host = str(ip) if tag == _IPV4 else f"[{ip}]"
    if port == 0:
        raise TokenError(f"token: endpoint {number}: port 0")
    return f"{host}:{port}", rest
