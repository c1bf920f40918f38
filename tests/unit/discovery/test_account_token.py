"""The account invite token (FMA1-...): it round-trips, tolerates how people type it, catches
typos by its check before any network contact, and is never taken for a node invite."""

from __future__ import annotations

import os

import pytest

from formation.discovery import account_token as at
from formation.discovery import token as node_tokens
from formation.discovery.token import TokenError

ADMIN = bytes(range(32))


def make(account: str = "alice", endpoints=("192.0.2.10:7701", "[2001:db8::1]:7701",
                                             "node.example:7701")) -> at.AccountToken:
    return at.new_token(list(endpoints), ADMIN, 1_900_000_000, account, bytes(16))


def test_it_round_trips_in_any_case_with_spaces_and_dashes() -> None:
    token = make()
    text = token.encode()
    assert text.startswith("FMA1-")
    for typed in (text, text.lower(), text.replace("-", " "), text.replace("-", "")):
        assert at.decode(typed) == token
    assert token.matches(ADMIN) and not token.matches(bytes(32))
    assert token.invite_key_hex == bytes(token.invite_key.verify_key).hex()
    # the secret alone makes the invite key: another secret, another key
    other = at.new_token(["192.0.2.10:7701"], ADMIN, 1, "alice", os.urandom(16))
    assert other.invite_key_hex != token.invite_key_hex


@pytest.mark.parametrize("mangle, expected", [
    (lambda t: t[:15] + ("0" if t[15] != "0" else "1") + t[16:], "checksum"),
    (lambda t: t[:12] + t[13:], "checksum|length"),
    (lambda t: t[:10] + "U" + t[11:], "bad character"),
    (lambda t: t[:20], "too short"),
    (lambda t: "FMN2" + t[4:], "node invite"),
    (lambda t: "XYZ1" + t[4:], "start with FMA1"),
    (lambda t: "", "empty"),
])
def test_a_mangled_token_is_refused_in_one_line(mangle, expected) -> None:
    with pytest.raises(TokenError) as caught:
        at.decode(mangle(make().encode()))
    message = str(caught.value)
    assert "\n" not in message
    assert any(part in message for part in expected.split("|")), message


def test_a_node_invite_is_not_an_account_invite_and_back() -> None:
    node = node_tokens.new_token(["192.0.2.10:7701"], ADMIN, 1_900_000_000, bytes(16))
    with pytest.raises(TokenError, match="node invite"):
        at.decode(node.encode())
    with pytest.raises(TokenError):
        node_tokens.decode(make().encode())


def test_what_cannot_be_carried_is_refused() -> None:
    with pytest.raises(TokenError, match="no endpoint"):
        make(endpoints=())
    with pytest.raises(TokenError, match="HOST:PORT"):
        make(endpoints=("nohost",))
    with pytest.raises(TokenError, match="account"):
        make(account="Not An Account")
