"""The invite token: round trip in every form people type or paste, its size (a QR code of version
4 at most for one IPv4 endpoint), and every kind of damage refused with a one-line reason."""

from __future__ import annotations

import os
import struct

import pytest
import segno
from nacl.signing import SigningKey

from formation.commands.join import parse_duration
from formation.discovery import token as tokens
from formation.errors import FormationError
from formation.identity.keys import fingerprint

ADMIN = bytes(SigningKey.generate().verify_key)
EXPIRES = 1_800_000_000


def _token(endpoints=("10.0.0.1:7170",)) -> tokens.InviteToken:
    return tokens.new_token(list(endpoints), ADMIN, EXPIRES, os.urandom(16))


def _body(endpoint_bytes: bytes) -> bytes:
    return os.urandom(16) + os.urandom(16) + struct.pack(">I", EXPIRES) + endpoint_bytes


def _refused(text: str, reason: str) -> None:
    with pytest.raises(tokens.TokenError, match=reason) as exc:
        tokens.decode(text)
    assert "\n" not in str(exc.value)


def test_round_trip_of_every_endpoint_kind():
    endpoints = ("10.0.0.1:7170", "[fd00::1]:7171", "admin-1.example.lan:443", "a:1")
    token = _token(endpoints)
    assert tokens.decode(token.encode()) == token
    assert token.endpoints == endpoints and token.expires_s == EXPIRES
    assert token.matches(ADMIN) and not token.matches(bytes(32))
    assert fingerprint(ADMIN) == tokens.format_pin(token.pin)
    # the token key is derived from the secret: the same secret, the same invite key
    again = tokens.decode(token.compact())
    assert again.token_key == token.token_key == bytes(SigningKey(token.seed).verify_key)


def test_typed_forms_decode_alike():
    token = _token()
    grouped, compact = token.encode(), token.compact()
    assert grouped.startswith("FMN2-") and grouped.replace("-", "") == compact
    assert all(len(group) == tokens.GROUP for group in grouped.split("-")[:-1])
    for typed in (compact, compact.lower(), grouped.lower(), " ".join(grouped.split("-")),
                  grouped[:30] + "\n  " + grouped[30:],
                  compact.replace("1", "l").replace("0", "O")):  # Crockford's look-alikes
        assert tokens.decode(typed) == token


def test_one_ipv4_endpoint_is_a_small_qr_code():
    token = _token(("192.168.100.200:7170",))
    assert len(token.body()) + tokens.CHECK_BYTES == 46
    assert len(token.compact()) == 78
    assert segno.make(token.compact(), error="l").version <= 3 + 1
    assert segno.make(token.encode(), error="l").version <= 4  # grouped, as shown


def test_every_changed_character_is_caught_locally():
    text = _token().compact()
    for i in range(len(tokens.PREFIX), len(text)):
        other = tokens.ALPHABET[(tokens.ALPHABET.index(text[i]) + 1) % 32]
        _refused(text[:i] + other + text[i + 1:], "checksum does not match|wrong length")


def test_refusals_say_what_is_wrong():
    token = _token()
    text = token.encode()
    _refused("", "empty")
    _refused("  - ", "empty")
    _refused("fmn1gliThwFQDw8PDw8PDw8PDw8P", "old-format token")
    _refused("10.0.0.1:7170", "expected it to start with FMN2")
    _refused("XMN2" + text[4:], "start with FMN2 .*, got 'XMN2'")
    _refused(text[:9] + "U" + text[10:], "bad character 'U' at position 10")
    _refused(text[:20] + "!" + text[21:], "bad character '!' at position 21")
    _refused(text[:40], "too short: .* at least 75")
    _refused(text + "0", "wrong length|checksum")
    _refused(text[:-1], "wrong length|checksum")
    swapped = text[:10] + text[11] + text[10] + text[12:]
    if swapped != text:
        _refused(swapped, "checksum does not match")


def test_damaged_contents_with_a_good_checksum_are_refused():
    v4 = bytes([4, 10, 0, 0, 1]) + struct.pack(">H", 7170)
    _refused(tokens.armor(_body(bytes([9]) + v4[1:])), "endpoint 1: unknown kind 0x09")
    _refused(tokens.armor(_body(v4 + bytes([6]) + bytes(10))), "endpoint 2 is cut short")
    _refused(tokens.armor(_body(bytes([0x48, 6]) + b"a b\x00cd" + b"\x1c\x02")),
             "endpoint 1: not a hostname")
    _refused(tokens.armor(_body(bytes([0x48, 0, 0, 0, 0]))), "endpoint 1 is cut short")
    _refused(tokens.armor(_body(v4[:5] + b"\x00\x00")), "endpoint 1: port 0")
    _refused(tokens.armor(_body(v4 * 9)), "more than 8 endpoints")
    assert tokens.decode(tokens.armor(_body(v4 * 8))).endpoints == ("10.0.0.1:7170",) * 8


def test_endpoints_a_token_cannot_carry():
    for bad in ("no-port", "host:0", "bad host:7170", "x:99999", "[::1:7170"):
        with pytest.raises(tokens.TokenError, match="endpoint"):
            _token((bad,))
    with pytest.raises(tokens.TokenError, match="no endpoint"):
        _token(())
    assert len(_token(["10.0.0.1:1"] * 12).endpoints) == tokens.MAX_ENDPOINTS


def test_durations():
    assert parse_duration("1h") == 3600 and parse_duration("90s") == 90
    assert parse_duration("7d") == 7 * 86400
    with pytest.raises(FormationError, match="--expires"):
        parse_duration("1 hour")
