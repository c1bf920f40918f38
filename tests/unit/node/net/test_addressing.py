"""Carving a network into per-node mesh addresses and VM subnets."""

from __future__ import annotations

import ipaddress

import pytest

from formation.node.net.addressing import AddressingError, MeshLayout


def test_slot_addresses() -> None:
    layout = MeshLayout.parse("10.88.0.0/16")
    assert layout.slots == 254
    one = layout.addresses(1)
    assert str(one.mesh_address) == "10.88.0.1/16"
    assert str(one.vm_subnet) == "10.88.1.0/24"
    assert str(one.vm_gateway) == "10.88.1.1/24"
    assert one.allowed_ips() == ("10.88.0.1/32", "10.88.1.0/24")
    last = layout.addresses(254)
    assert str(last.vm_subnet) == "10.88.254.0/24"


def test_every_slot_is_distinct_and_inside_the_network() -> None:
    layout = MeshLayout.parse("10.90.0.0/20", vm_prefix=26)
    seen_mesh, seen_vm = set(), set()
    for slot in range(1, layout.slots + 1):
        a = layout.addresses(slot)
        assert a.mesh_address.ip in layout.network and a.vm_subnet.subnet_of(layout.network)
        assert not a.vm_subnet.overlaps(ipaddress.ip_network("10.90.0.0/26"))  # the mesh pool
        seen_mesh.add(a.mesh_address.ip)
        seen_vm.add(a.vm_subnet)
    assert len(seen_mesh) == len(seen_vm) == layout.slots


def test_allocation_is_deterministic_and_skips_taken_slots() -> None:
    layout = MeshLayout.parse("10.88.0.0/16")
    first = layout.allocate("nabc")
    assert layout.allocate("nabc") == first
    second = layout.allocate("nabc", taken={first.slot})
    assert second.slot != first.slot
    taken: set[int] = set()
    for i in range(layout.slots):
        taken.add(layout.allocate(f"n{i}", taken).slot)
    assert len(taken) == layout.slots
    with pytest.raises(AddressingError, match="full"):
        layout.allocate("one-too-many", taken)


@pytest.mark.parametrize(("cidr", "prefix", "message"), [
    ("10.88.0.1/16", 24, "host bits"),
    ("fd00::/64", 80, "only IPv4"),
    ("10.88.0.0/24", 24, "longer than"),
    ("bogus", 24, "does not appear"),
])
def test_bad_layouts_are_explained(cidr: str, prefix: int, message: str) -> None:
    with pytest.raises(AddressingError, match=message):
        MeshLayout.parse(cidr, prefix)
