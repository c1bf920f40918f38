"""Which address an instance gets, and which addresses have moved: pure functions over the
network's layout and the instances view, so every rule is tested without a host.

An instance placed on a node gets the lowest free host address of that node's VM subnet (never
the subnet's network, broadcast or gateway address). An instance that already has an address
(it migrated in, or the node restarted) keeps it, even when that address lies in another
node's subnet: its peers, its DNS name and its open connections stay valid. Such an address is
"moved": it is routed as a /32 to the node that runs the instance (follow.py, vm_network.py)."""

from __future__ import annotations

import hashlib
import ipaddress
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from formation.node.net.addressing import AddressingError, MeshLayout, NodeAddresses
from formation.node.state.instance_view import current_observed

IPv4 = ipaddress.IPv4Address


class AddressesExhausted(AddressingError):
    pass


def mac_for(instance: str) -> str:
    """A locally administered unicast MAC (02:...) from the instance id: the same on every host
    and across restarts, so a moved guest keeps its interface and its neighbours' ARP entries."""
    digest = hashlib.blake2b(instance.encode(), digest_size=5, person=b"formation-mac").digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest))


def usable(layout: MeshLayout, address: str) -> bool:
    """An address an instance may hold: inside some node's VM subnet (not the mesh pool), and
    not that subnet's network, broadcast or gateway address. Guards against a status naming an
    address the instance could never have been given (a forged or corrupt status)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if not isinstance(ip, IPv4) or ip not in layout.network:
        return False
    offset = int(ip) - int(layout.network.network_address)
    block = 2 ** (32 - layout.vm_prefix)
    slot, host = divmod(offset, block)
    return 1 <= slot <= layout.slots and 2 <= host < block - 1


def choose(subnet: NodeAddresses, taken: Collection[str], keep: str | None,
           layout: MeshLayout) -> str:
    """The address for one instance on the node owning `subnet`: `keep` (its current one) when
    it is usable and nobody else here holds it, else the lowest free host of the subnet."""
    if keep and keep not in taken and usable(layout, keep):
        return keep
    used = set(taken)
    gateway = subnet.vm_gateway.ip
    for ip in subnet.vm_subnet.hosts():
        if ip != gateway and str(ip) not in used:
            return str(ip)
    raise AddressesExhausted(
        f"VM subnet {subnet.vm_subnet} is full: {len(used)} addresses in use")


def layout_of(cidr: str | None, vm_prefix: int) -> MeshLayout | None:
    if not cidr:
        return None
    try:
        return MeshLayout.parse(cidr, vm_prefix)
    except AddressingError:
        return None


def subnet_of(layout: MeshLayout, mesh_address: str | None) -> NodeAddresses | None:
    """A node's addresses from its mesh address (slot = offset in the network)."""
    if not mesh_address:
        return None
    try:
        slot = int(ipaddress.ip_address(mesh_address)) - int(layout.network.network_address)
        return layout.addresses(slot)
    except (AddressingError, ValueError):
        return None


def placed_addresses(instances: Iterable[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """instance -> (node holding it, its current address), for placed instances that report
    one under their current placement."""
    found = {}
    for inst in instances:
        node = inst.get("placement")
        address = current_observed(inst).get("address")
        if isinstance(node, str) and isinstance(address, str):
            found[str(inst["key"])] = (node, address)
    return found


def moved(instances: Iterable[dict[str, Any]], nodes: Sequence[dict[str, Any]],
          layout: MeshLayout) -> dict[str, list[str]]:
    """node key -> the /32s of instances it runs whose address is not in its own VM subnet
    (they migrated there): added to that node's WireGuard AllowedIPs, and routed by hosts.

    An address two instances report is nobody's /32: a member writing another VM's address
    into its own instance's status must not pull that VM's traffic through the mesh to itself
    (or make the subnet's owner route its own VM away). A real move never shows the address
    twice: only the status under the instance's current placement counts."""
    subnets = {n["key"]: subnet_of(layout, n.get("address")) for n in nodes}
    placed = list(placed_addresses(instances).values())
    reported = Counter(address for _node, address in placed)
    found: dict[str, list[str]] = {}
    for node, address in placed:
        mine = subnets.get(node)
        if mine is None or not usable(layout, address) or reported[address] > 1:
            continue
        if ipaddress.ip_address(address) not in mine.vm_subnet:
            found.setdefault(node, []).append(f"{address}/32")
    return {k: sorted(v) for k, v in found.items()}
