"""One WireGuard interface, two backends (wgkernel.py, wggo.py; backend_factory.py picks one).
Both change peers one at a time: replacing the whole peer list resets every live session, so no
operation here ever does it."""

from __future__ import annotations

from typing import Protocol

from formation.node.net.host import NetHost
from formation.node.net.peers import InterfaceStatus, PeerConfig


class WireGuardBackend(Protocol):
    name: str
    kind: str
    host: NetHost

    async def create(self, private_key: str, listen_port: int) -> None:
        """Create the interface (if needed), set key and port, bring it up."""

    async def set_peer(self, peer: PeerConfig) -> None:
        """Add the peer, or make an existing one exactly `peer`. Other peers are untouched."""

    async def remove_peer(self, public_key: str) -> None:
        """Remove one peer. Other peers' sessions are untouched."""

    async def status(self) -> InterfaceStatus:
        """Key, port and every peer with its endpoint, last handshake and byte counters."""

    async def add_address(self, cidr: str) -> None: ...

    async def remove_address(self, cidr: str) -> None: ...

    async def add_route(self, destination: str) -> None: ...

    async def delete(self) -> None:
        """Remove the interface (and stop whatever runs it)."""
