"""Peers and mesh: a place for the other nodes, invites and join approvals."""

from __future__ import annotations

from formation.tui.screens.network_pending import NetworkPendingScreen


class PeersScreen(NetworkPendingScreen):
    TITLE_TEXT = "peers and mesh"
    AREA = "peers"
    INTRO = ("[b]Peers and mesh[/b]\n"
             "Here will be every node with its endpoint, handshake age, rx/tx and round-trip "
             "time; creating an invite (token and QR code); approving or rejecting pending "
             "joins; removing a node.")

    def details(self) -> str:
        status = self.app.node_status  # type: ignore[attr-defined]
        if status is None:
            return ""
        return f"this node's WireGuard public key: {status.identity.wireguard_public_key}"
