"""Peer validation and the UAPI text format, without a device."""

from __future__ import annotations

import base64

import pytest
from nacl.bindings import crypto_scalarmult_base

from formation.node.net.peers import PeerConfig, WireGuardError, key_to_hex
from formation.node.net.uapi import parse_get, peer_lines, remove_peer_lines

KEY = base64.b64encode(bytes(range(32))).decode()


def test_peer_lines_touch_one_peer_and_replace_only_its_allowed_ips() -> None:
    peer = PeerConfig(KEY, "198.18.0.2:51820", ("10.88.2.0/24", "10.88.0.2"), 25)
    lines = peer_lines(peer)
    assert lines[0] == f"public_key={bytes(range(32)).hex()}"
    assert "endpoint=198.18.0.2:51820" in lines
    assert "persistent_keepalive_interval=25" in lines
    assert "replace_allowed_ips=true" in lines
    assert [ln for ln in lines if ln.startswith("allowed_ip=")] == [
        "allowed_ip=10.88.0.2/32", "allowed_ip=10.88.2.0/24"]
    assert not any(ln.startswith("replace_peers") for ln in lines)
    assert remove_peer_lines(KEY) == [f"public_key={bytes(range(32)).hex()}", "remove=true"]


def test_peer_config_rejects_bad_input_with_the_field_named() -> None:
    with pytest.raises(WireGuardError, match="32 bytes"):
        PeerConfig(base64.b64encode(b"short").decode())
    with pytest.raises(WireGuardError, match="endpoint"):
        PeerConfig(KEY, "not-an-ip:51820")
    with pytest.raises(WireGuardError, match="endpoint"):
        PeerConfig(KEY, "10.0.0.1:99999")
    with pytest.raises(WireGuardError, match="allowed IPs"):
        PeerConfig(KEY, allowed_ips=("10.0.0.300/32",))
    assert PeerConfig(KEY, "[fd00::1]:51820").endpoint == "[fd00::1]:51820"


def test_parse_get_answer() -> None:
    private = bytes([7] * 32)
    public = base64.b64encode(crypto_scalarmult_base(private)).decode()
    other = bytes([9] * 32)
    lines = [
        f"private_key={private.hex()}", "listen_port=51820",
        f"public_key={other.hex()}", "endpoint=198.18.0.3:51820",
        "last_handshake_time_sec=1700000000", "last_handshake_time_nsec=500000000",
        "tx_bytes=10", "rx_bytes=20", "persistent_keepalive_interval=25",
        "allowed_ip=10.88.0.3/32", "allowed_ip=10.88.3.0/24", "protocol_version=1",
        f"public_key={bytes([1] * 32).hex()}", "last_handshake_time_sec=0",
        "last_handshake_time_nsec=0", "tx_bytes=0", "rx_bytes=0",
    ]
    status = parse_get("formnet0", lines)
    assert status.public_key == public and status.listen_port == 51820
    first, second = status.peers
    assert first.public_key == base64.b64encode(other).decode()
    assert first.endpoint == "198.18.0.3:51820"
    assert first.latest_handshake == 1700000000.5
    assert (first.rx_bytes, first.tx_bytes, first.persistent_keepalive) == (20, 10, 25)
    assert first.allowed_ips == ("10.88.0.3/32", "10.88.3.0/24")
    assert second.endpoint is None and second.latest_handshake == 0.0
    assert key_to_hex(second.public_key) == bytes([1] * 32).hex()
