"""Carving a network's CIDR into per-node mesh addresses and VM subnets, deterministically.

The first VM-sized block of the network is the mesh pool: node slot k has mesh address pool[k]
(with the network's prefix, so one route covers the whole network through the mesh interface)
and VM subnet number k (block k after the pool). A node's preferred slots follow from a hash of
its id, so every node computes the same answer; the state store arbitrates when two nodes want
the same slot (the claims it passes in as `taken`). IPv4 only for now."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Collection, Iterator
from dataclasses import dataclass


class AddressingError(ValueError):
    pass


@dataclass(frozen=True)
class NodeAddresses:
    slot: int
    mesh_address: ipaddress.IPv4Interface
    vm_subnet: ipaddress.IPv4Network
    vm_gateway: ipaddress.IPv4Interface

    def allowed_ips(self) -> tuple[str, ...]:
        """What peers route to this node: its mesh address and its VM subnet."""
        return (f"{self.mesh_address.ip}/32", str(self.vm_subnet))


@dataclass(frozen=True)
class MeshLayout:
    network: ipaddress.IPv4Network
    vm_prefix: int = 24

    @classmethod
    def parse(cls, cidr: str, vm_prefix: int = 24) -> MeshLayout:
        try:
            network = ipaddress.ip_network(cidr, strict=True)
        except ValueError as exc:
            raise AddressingError(f"network CIDR {cidr!r}: {exc}") from None
        if not isinstance(network, ipaddress.IPv4Network):
            raise AddressingError(f"network CIDR {cidr!r}: only IPv4 networks are supported")
        if not network.prefixlen < vm_prefix <= 30:
            raise AddressingError(
                f"VM subnet prefix /{vm_prefix} must be longer than the network's "
                f"/{network.prefixlen} and at most /30")
        return cls(network, vm_prefix)

    @property
    def _block(self) -> int:
        return 2 ** (32 - self.vm_prefix)

    @property
    def slots(self) -> int:
        """Usable slots: pool addresses (no network/broadcast) and VM blocks after the pool."""
        blocks = 2 ** (self.vm_prefix - self.network.prefixlen)
        return min(self._block - 2, blocks - 1)

    def addresses(self, slot: int) -> NodeAddresses:
        if not 1 <= slot <= self.slots:
            raise AddressingError(f"slot {slot} is outside 1..{self.slots}")
        base = int(self.network.network_address)
        mesh = ipaddress.IPv4Interface((base + slot, self.network.prefixlen))
        subnet = ipaddress.IPv4Network((base + slot * self._block, self.vm_prefix))
        gateway = ipaddress.IPv4Interface((int(subnet.network_address) + 1, self.vm_prefix))
        return NodeAddresses(slot, mesh, subnet, gateway)

    def preferred_slots(self, node_id: str) -> Iterator[int]:
        """Every slot once, starting from a hash of the node id."""
        digest = hashlib.blake2b(node_id.encode(), digest_size=8, person=b"formation-slot")
        start = int.from_bytes(digest.digest(), "big") % self.slots
        for offset in range(self.slots):
            yield 1 + (start + offset) % self.slots

    def allocate(self, node_id: str, taken: Collection[int] = ()) -> NodeAddresses:
        """The first of the node's preferred slots that nobody else holds."""
        for slot in self.preferred_slots(node_id):
            if slot not in taken:
                return self.addresses(slot)
        raise AddressingError(f"{self.network} is full: all {self.slots} node slots are taken")
