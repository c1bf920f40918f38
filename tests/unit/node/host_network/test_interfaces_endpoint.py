"""GET /v1/host/interfaces on a real node whose host-network part reads a network namespace
this test makes (a veth pair, a link named as the mesh interface, loopback); and on the
machine's own namespace, where at least loopback is there and marked."""

from __future__ import annotations

from pathlib import Path

from host_links import linked_namespace
from settings_factory import make_settings

from formation.api import host_routes
from formation.api.client import NodeClient
from formation.node.host_network.component import HostNetwork
from formation.node.net.host import NetHost
from formation.node.service import NodeService


async def interfaces_of(service: NodeService):
    async with NodeClient.unix(service.settings.api.socket) as client:
        return await client.call(host_routes.host_interfaces)


async def test_interfaces_of_a_namespace_with_a_veth_pair(short_tmp: Path) -> None:
    async with linked_namespace() as space:
        service = NodeService(make_settings(short_tmp),
                              components=[HostNetwork(NetHost(netns=space.netns))])
        await service.start()
        try:
            found = await interfaces_of(service)
        finally:
            await service.stop()
    by_name = {i.name: i for i in found.interfaces}
    assert set(by_name) == {"lo", space.up, space.down, space.mesh}
    lo, up, down, mesh = (by_name[n] for n in ("lo", space.up, space.down, space.mesh))
    assert lo.role == "loopback" and lo.kind == "loopback" and lo.mac is None
    assert lo.addresses == ["127.0.0.1/8"]
    assert up.role == "candidate" and up.kind == "veth" and up.up
    assert up.addresses == [space.up_address]
    assert up.mac is not None and len(up.mac.split(":")) == 6
    assert down.role == "candidate" and not down.up and down.state == "down"
    assert down.addresses == [] and down.mac != up.mac
    assert mesh.role == "formation"  # named as the node's mesh interface: never the underlay
    assert found.interfaces[0].name == "lo"  # kernel index order
    assert found.networkd is False  # no systemd here


async def test_interfaces_of_this_machine_mark_loopback(short_tmp: Path) -> None:
    service = NodeService(make_settings(short_tmp), components=[HostNetwork()])
    await service.start()
    try:
        found = await interfaces_of(service)
    finally:
        await service.stop()
    lo = next(i for i in found.interfaces if i.name == "lo")
    assert lo.role == "loopback" and "127.0.0.1/8" in lo.addresses
