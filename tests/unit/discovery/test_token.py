"""The invite token: round trip, and every kind of damage refused with a clear reason."""

from __future__ import annotations

import os

import pytest
from nacl.signing import SigningKey

from formation.commands.join import parse_duration
from formation.discovery import token as tokens
from formation.errors import FormationError


def _token(endpoints=("10.0.0.1:7170",)) -> tuple[str, SigningKey]:
    admin = SigningKey.generate()
    unsigned = tokens.InviteToken(os.urandom(16), os.urandom(32), os.urandom(32),
                                  tuple(endpoints), bytes(admin.verify_key), 1_800_000_000_000)
    signed = tokens.sign(unsigned, lambda m: admin.sign(m).signature)
    return signed.encode(), admin


def test_round_trip_and_signature():
    text, admin = _token(("10.0.0.1:7170", "[fd00::1]:7170"))
    decoded = tokens.decode(text)
    decoded.verify()
    assert decoded.admin_key == bytes(admin.verify_key)
    assert decoded.endpoints == ("10.0.0.1:7170", "[fd00::1]:7170")
    assert len(text) < 320
    assert tokens.decode(text[:50] + "\n  " + text[50:]) == decoded  # wrapped when pasted


def test_every_changed_character_is_refused():
    text, _ = _token()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i in range(len(tokens.PREFIX), len(text)):
        other = alphabet[(alphabet.index(text[i]) + 1) % len(alphabet)]
        changed = text[:i] + other + text[i + 1:]
        with pytest.raises(tokens.TokenError):
            tokens.decode(changed).verify()


def test_cut_or_foreign_tokens_say_what_is_wrong():
    text, _ = _token()
    for bad in (text[:len(text) // 2], text[:-1] + "", "hello", "", "fmn1"):
        with pytest.raises(tokens.TokenError, match="not a complete formation invite token"):
            tokens.decode(bad)


def test_malformed_endpoint_is_refused_even_when_signed():
    text, _ = _token(("bad host\x00:7170",))
    with pytest.raises(tokens.TokenError):
        tokens.decode(text)


def test_durations():
    assert parse_duration("1h") == 3600 and parse_duration("90s") == 90
    assert parse_duration("7d") == 7 * 86400
    with pytest.raises(FormationError, match="--expires"):
        parse_duration("1 hour")
