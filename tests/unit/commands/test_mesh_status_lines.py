"""How `formation mesh status` prints for a person."""

from __future__ import annotations

from formation.api.mesh_models import MeshPeer, MeshStatus
from formation.commands.mesh import status_lines


def test_off() -> None:
    (line,) = status_lines(MeshStatus(enabled=False, interface="formnet0"))
    assert "mesh.enabled is false" in line


def test_peers_table() -> None:
    status = MeshStatus(
        enabled=True, interface="formnet0", backend="wireguard-go", up=True,
        public_key="K" * 43 + "=", listen_port=51820, address="10.88.0.1/16", peers=[
            MeshPeer(public_key="P" * 43 + "=", node_id="nabc", endpoint="198.18.0.2:51820",
                     handshake_age_s=3.2, rx_bytes=2048, tx_bytes=10),
            MeshPeer(public_key="Q" * 43 + "="),
        ])
    text = "\n".join(status_lines(status))
    assert "formnet0 (wireguard-go)" in text and "10.88.0.1/16" in text
    assert "nabc" in text and "198.18.0.2:51820" in text and "3s ago" in text
    assert "2.0 KiB" in text and "10 B" in text and "never" in text


def test_down_shows_why() -> None:
    status = MeshStatus(enabled=True, interface="formnet0", backend="wireguard-go",
                        error="cannot reach the WireGuard UAPI socket")
    assert "DOWN: cannot reach" in status_lines(status)[0]
