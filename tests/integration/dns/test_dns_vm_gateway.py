"""The VMs' resolver: a real node service (state + DNS parts) in a simulated host answers on
its VM bridge gateway, computed from its mesh slot, for a "guest" namespace plugged into the
bridge the way a VM's tap is. The bridge appears after the node started (the VM network part
makes it), loses its address and gets it back (a restart that rebuilds it): the node answers
whenever the address is there, without being told. Names follow the store: an instance's
address, its SRV record, and no name once it is deleted."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest
from mesh_support import requires_mesh_tools
from settings_factory import make_settings
from waiting import until

from bench.support.testbed import Testbed, sh
from formation.node.dns.component import DnsComponent
from formation.node.net.host import call_in_netns
from formation.node.service import NodeService
from formation.node.state.component import StateComponent

pytestmark = [requires_mesh_tools, pytest.mark.root]

CIDR = "10.42.0.0/16"
BRIDGE = "formbr0"


async def ask(netns: str, server: str, name: str, rdtype: str = "A") -> dns.message.Message | None:
    """One UDP query from inside `netns`; None when nothing answers (no address there yet)."""
    query = dns.message.make_query(name, rdtype)

    def send() -> dns.message.Message | None:
        try:
            return dns.query.udp(query, server, timeout=0.5, port=53)
        except (dns.exception.Timeout, OSError):
            return None

    return await asyncio.to_thread(call_in_netns, netns, send)


def addresses(reply: dns.message.Message | None) -> list[str]:
    if reply is None or reply.rcode() != dns.rcode.NOERROR or not reply.answer:
        return []
    return sorted(r.address for r in reply.answer[0])


async def test_the_node_answers_its_vms_on_the_bridge_gateway(short_tmp: Path) -> None:
    async with Testbed(["a"]) as bed:
        host = bed.hosts["a"]
        settings = make_settings(short_tmp / "a", dns={
            "enabled": True, "port": 53, "listen": ["127.0.0.1"]})
        state = StateComponent()
        dns_part = DnsComponent(host.net, state)
        service = NodeService(settings, components=[state, dns_part])
        await service.start()
        try:
            store = state.require_store()
            await store.create_network("lab", CIDR)
            await store.append("node.record", {"name": "a"})
            await store.ensure_address()
            [me] = await store.view("nodes")
            slot = int(ipaddress.ip_address(me["address"])) - int(
                ipaddress.ip_network(CIDR).network_address)
            subnet = ipaddress.ip_network(f"10.42.{slot}.0/24")  # the layout: one /24 a slot
            gateway = str(subnet.network_address + 1)
            await until(lambda: dns_part.gateway == gateway, what="dns bound to the VM gateway")

            # the VM network part makes the bridge later; a guest plugs into it
            await host.run("ip", "link", "add", BRIDGE, "type", "bridge")
            await host.run("ip", "addr", "add", f"{gateway}/24", "dev", BRIDGE)
            await host.run("ip", "link", "set", BRIDGE, "up")
            guest = await bed.add_guest("a", "g1", BRIDGE, f"{subnet.network_address + 2}/24",
                                        gateway)
            assert guest.netns is not None
            create = await store.append("instance.create", {"name": "web", "spec": {
                "image": "ab" * 32, "vcpus": 1, "memory_mb": 512, "disk_gb": 5,
                "ports": ["80/tcp"]}})
            inst = create.id.hex()
            place = await store.append("instance.place", {
                "instance": inst, "node": store.identity.public_key_hex})
            vm_address = str(subnet.network_address + 2)
            await store.append("instance.status", {"instance": inst, "placement": place.id.hex(),
                                                   "observed": {"state": "running",
                                                                "address": vm_address}})

            async def resolves() -> bool:
                return addresses(await ask(guest.netns, gateway, "web.lab.fog")) == [vm_address]

            await until(resolves, what="web.lab.fog from the guest through its gateway")
            srv = await ask(guest.netns, gateway, "_80._tcp.web.lab.fog", "SRV")
            assert srv is not None and srv.answer[0][0].port == 80
            assert srv.answer[0].ttl == 2  # dns.instance_ttl_s: instances move

            # the bridge loses its address and gets it back: answered again, nothing restarted
            server = dns_part.gateway_server
            await host.run("ip", "addr", "del", f"{gateway}/24", "dev", BRIDGE)
            assert await ask(guest.netns, gateway, "web.lab.fog") is None
            await sh("ip", "-n", host.netns, "addr", "add", f"{gateway}/24", "dev", BRIDGE)
            await until(resolves, what="web.lab.fog once the gateway address is back")
            assert dns_part.gateway_server is server

            await store.append("instance.delete", {"instance": inst})

            async def gone() -> bool:
                reply = await ask(guest.netns, gateway, "web.lab.fog")
                return reply is not None and reply.rcode() == dns.rcode.NXDOMAIN

            await until(gone, what="no name once the instance is deleted")
            health = {c.name: c for c in dns_part.health()}["dns"]
            assert health.ok and f"{gateway}:53" in health.detail
        finally:
            await service.stop()
