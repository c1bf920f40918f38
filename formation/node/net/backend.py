"""One WireGuard interface, two backends. Both change peers one at a time: replacing the whole
peer list resets every live session, so no operation here ever does it."""

from __future__ import annotations

from typing import Protocol

from formation.node.net.host import LOCAL_HOST, NetHost
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


class LinkMixin:
    """Addresses and routes go through rtnetlink for both backends. They are remembered so a
    backend that has to recreate its device (wireguard-go restarted) can put them back.
    `links` (pyroute2) is imported where it is used, so a node without a mesh never loads it."""

    name: str
    host: NetHost

    def _init_links(self) -> None:
        self._addresses: list[str] = []
        self._routes: list[str] = []

    async def add_address(self, cidr: str) -> None:
        from formation.node.net import links

        await links.add_address(self.host, self.name, cidr)
        if cidr not in self._addresses:
            self._addresses.append(cidr)

    async def remove_address(self, cidr: str) -> None:
        from formation.node.net import links

        await links.remove_address(self.host, self.name, cidr)
        if cidr in self._addresses:
            self._addresses.remove(cidr)

    async def add_route(self, destination: str) -> None:
        from formation.node.net import links

        await links.add_route(self.host, destination, self.name)
        if destination not in self._routes:
            self._routes.append(destination)

    async def _restore_links(self) -> None:
        from formation.node.net import links

        await links.set_up(self.host, self.name)
        for cidr in self._addresses:
            await links.add_address(self.host, self.name, cidr)
        for destination in self._routes:
            await links.add_route(self.host, destination, self.name)


def make_backend(kind: str, name: str, host: NetHost = LOCAL_HOST,
                 wireguard_go: str = "wireguard-go") -> WireGuardBackend:
    """`kind` is what the capability probe chose (Capabilities.wireguard_backend)."""
    if kind == "kernel":
        from formation.node.net.wgkernel import KernelWireGuardBackend

        return KernelWireGuardBackend(name, host)
    if kind == "wireguard-go":
        from formation.node.net.wggo import WireGuardGoBackend

        return WireGuardGoBackend(name, host, binary=wireguard_go)
    from formation.node.net.peers import WireGuardError

    raise WireGuardError(f"no WireGuard on this host (capability probe says {kind!r})")
