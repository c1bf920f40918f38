"""The VMs' resolver address: the gateway of this node's VM subnet. The VM network part puts
it on the bridge and gives it to guests as their DNS server; both sides compute it from the same
inputs (the network's CIDR, the VM subnet prefix and the node's mesh address, whose offset in
the network is its slot), so they agree without talking."""

from __future__ import annotations

import ipaddress

from formation.node.net.addressing import AddressingError, MeshLayout


def vm_gateway(cidr: str, vm_prefix: int, mesh_address: str) -> str | None:
    """The gateway address, or None when the mesh address is not one of the layout's slots."""
    try:
        layout = MeshLayout.parse(cidr, vm_prefix)
        slot = int(ipaddress.ip_address(mesh_address)) - int(layout.network.network_address)
        return str(layout.addresses(slot).vm_gateway.ip)
    except (AddressingError, ValueError):
        return None
