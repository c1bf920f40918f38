"""verify_request's rules, one by one, on the exact canonical string."""

from __future__ import annotations

import time

import pytest

from formation.api.auth import (
    AuthFailure,
    NonceCache,
    canonical,
    sign_request,
    verify_request,
)
from formation.identity import NodeIdentity

IDENT = NodeIdentity.from_seed(bytes(32))
NODE_A = NodeIdentity.from_seed(bytes([1]) * 32).public_key_hex  # the node verifying
NODE_B = NodeIdentity.from_seed(bytes([2]) * 32).public_key_hex


def signed(stamp: str, nonce: str = "ab" * 16, body: bytes = b"{}",
           node: str = NODE_A) -> dict[str, str]:
    key = IDENT.public_key_hex
    sig = IDENT.sign(canonical("POST", "/v1/x?a=1", body, stamp, nonce, key, node))
    return {"X-Formation-Key": key, "X-Formation-Timestamp": stamp,
            "X-Formation-Nonce": nonce, "X-Formation-Node": node,
            "X-Formation-Signature": sig.hex()}


def verify(headers: dict[str, str], nonces: NonceCache | None = None, now: float = 1000.0,
           body: bytes = b"{}", node_key: str = NODE_A) -> str:
    return verify_request(headers, "POST", "/v1/x?a=1", body, is_known=lambda k: True,
                          nonces=nonces or NonceCache(window_s=60), node_key=node_key, now=now)


def test_canonical_string_is_exactly_as_documented() -> None:
    text = canonical("post", "/v1/x?a=1", b"", "1000.000", "ab" * 16, "cd" * 32,
                     "ef" * 32).decode()
    empty_sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert text == "\n".join(["formation-request-v2", "POST", "/v1/x?a=1", empty_sha256,
                              "1000.000", "ab" * 16, "cd" * 32, "ef" * 32])


def test_a_request_signed_for_another_node_is_refused() -> None:
    """Node B must not accept what was signed for node A (A could replay it to B)."""
    assert verify(signed("1000.000", node=NODE_B), node_key=NODE_B) == IDENT.public_key_hex
    with pytest.raises(AuthFailure, match="wrong node"):
        verify(signed("1000.000", node=NODE_B), node_key=NODE_A)


def test_the_named_node_is_covered_by_the_signature() -> None:
    headers = signed("1000.000", node=NODE_B) | {"X-Formation-Node": NODE_A}
    with pytest.raises(AuthFailure, match="bad signature"):
        verify(headers, node_key=NODE_A)


@pytest.mark.parametrize("node", [None, "", "AB" * 32, "ab" * 31])
def test_a_request_must_name_its_node(node: str | None) -> None:
    headers = signed("1000.000")
    if node is None:
        del headers["X-Formation-Node"]
    else:
        headers["X-Formation-Node"] = node
    with pytest.raises(AuthFailure, match="no target node"):
        verify(headers)


def test_good_signature_returns_the_key() -> None:
    assert verify(signed("1000.000")) == IDENT.public_key_hex


@pytest.mark.parametrize("stamp", ["nan", "NaN", "inf", "-5", "1e3", "1000,5", " 1000", ""])
def test_timestamps_that_are_not_plain_decimals_are_malformed(stamp: str) -> None:
    with pytest.raises(AuthFailure, match=r"malformed timestamp|unsigned"):
        verify(signed(stamp))


def test_window_edges() -> None:
    assert verify(signed("940.000"), now=1000.0)
    past = r"stale request: timestamp 61 s in the past, outside the accepted 60 s"
    with pytest.raises(AuthFailure, match=past):
        verify(signed("939.000"), now=1000.0)
    with pytest.raises(AuthFailure, match=r"stale request: timestamp 61 s in the future"):
        verify(signed("1061.000"), now=1000.0)


@pytest.mark.parametrize("nonce", ["AB" * 16, "zz" * 16, "ab" * 15, "ab" * 17])
def test_nonce_must_be_32_lowercase_hex(nonce: str) -> None:
    with pytest.raises(AuthFailure, match="malformed nonce"):
        verify(signed("1000.000", nonce=nonce))


def test_replay_is_caught_within_the_window_and_forgotten_after() -> None:
    nonces = NonceCache(window_s=60)
    verify(signed("1000.000"), nonces, now=1000.0)
    with pytest.raises(AuthFailure, match="replayed"):
        verify(signed("1000.000"), nonces, now=1030.0)
    assert len(nonces._seen) == 1
    other = signed("1200.000", nonce="cd" * 16)
    verify(other, nonces, now=1200.0)  # the first entry is older than two windows: evicted
    assert list(nonces._seen) == [(IDENT.public_key_hex, "cd" * 16)]


def test_unknown_key_is_checked_after_the_signature() -> None:
    with pytest.raises(AuthFailure, match="unknown key"):
        verify_request(signed("1000.000"), "POST", "/v1/x?a=1", b"{}", is_known=lambda k: False,
                       nonces=NonceCache(window_s=60), node_key=NODE_A, now=1000.0)


def test_sign_request_produces_headers_that_verify_now() -> None:
    headers = sign_request(IDENT, "POST", "/v1/x?a=1", b"{}", NODE_A)
    assert verify(headers, now=time.time()) == IDENT.public_key_hex
