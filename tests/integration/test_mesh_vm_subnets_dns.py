"""VM networking over the mesh and form-dns, on real wireguard-go in namespaces. A namespace
attached to each host's VM bridge stands in for a guest (no VMs yet)."""

from __future__ import annotations

import pytest
from mesh_support import (
    echo_server,
    handshaken,
    identities,
    requires_mesh_tools,
    tcp_roundtrip,
)
from waiting import wait_for

from bench.support.testbed import Testbed
from formation.node.dns.records import StaticRecords
from formation.node.dns.server import DnsResolver, DnsServer
from formation.node.net import links
from formation.node.net.addressing import MeshLayout
from formation.node.net.reconcile import DesiredPeer, MeshReconciler
from formation.node.net.wggo import WireGuardGoBackend

pytestmark = [requires_mesh_tools, pytest.mark.root]

PORT = 51820
BRIDGE = "fmvm0"


async def test_guests_reach_each_other_over_the_mesh_and_dns_answers() -> None:
    names = ["a", "b"]
    ids = identities(names)
    layout = MeshLayout.parse("10.88.0.0/16")
    taken: set[int] = set()
    addrs = {}
    for n in names:
        addrs[n] = layout.allocate(ids[n].node_id, taken)
        taken.add(addrs[n].slot)
    async with Testbed(names) as bed:
        backends: dict[str, WireGuardGoBackend] = {}
        dns_server: DnsServer | None = None
        recs: dict[str, MeshReconciler] = {}
        try:
            guests = {}
            for n in names:
                net = bed.hosts[n].net
                backend = WireGuardGoBackend("formnet0", net)
                await backend.create(ids[n].wireguard_private_key, PORT)
                backends[n] = backend
                await backend.add_address(str(addrs[n].mesh_address))  # /16: the whole network
                await links.ensure_bridge(net, BRIDGE, str(addrs[n].vm_gateway))
                await links.enable_forwarding(net)
                assert await net.read_sysctl("net.ipv4.ip_forward") == "1"
                await links.ensure_tap(net, "fmtap0", BRIDGE)
                guest_ip = str(addrs[n].vm_subnet[10])
                guests[n] = (guest_ip, await bed.add_guest(
                    n, f"{n}vm", BRIDGE, f"{guest_ip}/{layout.vm_prefix}",
                    str(addrs[n].vm_gateway.ip)))
            # a tap for a VM exists, enslaved to the bridge (the VMM will open it)
            async with bed.hosts["a"].net.iproute() as ipr:
                tap = (await ipr.link("get", ifname="fmtap0"))[0]
                bridge_index = await links.require_index(bed.hosts["a"].net, BRIDGE)
                assert tap.get("IFLA_MASTER") == bridge_index

            desired = [DesiredPeer(ids[n].node_id, ids[n].wireguard_public_key,
                                   (f"{bed.hosts[n].underlay_ip}:{PORT}",),
                                   addrs[n].allowed_ips()) for n in names]
            recs = {n: MeshReconciler(backends[n]) for n in names}
            for n in names:
                assert not (await recs[n].reconcile(desired)).failed
            other = {"a": "b", "b": "a"}
            for n in names:
                key = ids[other[n]].wireguard_public_key
                await wait_for(lambda n=n, key=key: _handshaken(backends[n], key), 15,
                               f"handshake on {n}")

            # guest on a reaches guest on b by address, through both bridges and the mesh
            server = await echo_server(guests["b"][1], guests["b"][0], 7100)
            got = await tcp_roundtrip(guests["a"][1], guests["b"][0], 7100, b"vm-to-vm")
            assert got == b"vm-to-vm"
            server.close()

            # form-dns on b's mesh address answers a, over UDP and TCP; refuses other names
            records = StaticRecords({("web", "net1"): [guests["b"][0]],
                                     ("b", "net1"): [str(addrs["b"].mesh_address.ip)]})
            dns_server = DnsServer(DnsResolver(records, "fog"), bed.hosts["b"].net)
            mesh_b = str(addrs["b"].mesh_address.ip)
            await dns_server.start([mesh_b], 53)
            dig = ("dig", f"@{mesh_b}", "+time=2", "+tries=1")
            a = bed.hosts["a"]
            assert (await a.run(*dig, "+short", "web.net1.fog")).split() == [guests["b"][0]]
            assert (await a.run(*dig, "+short", "+tcp", "b.net1.fog")).split() == [mesh_b]
            assert "status: NXDOMAIN" in await a.run(*dig, "nope.net1.fog")
            assert "status: REFUSED" in await a.run(*dig, "example.com")

            # b leaves: a drops its peer, and with it the route to b's VM subnet
            assert [c.action for c in (await recs["a"].reconcile(desired[:1])).applied] == [
                "remove"]
            routed = {ip for p in (await backends["a"].status()).peers for ip in p.allowed_ips}
            assert str(addrs["b"].vm_subnet) not in routed
        finally:
            if dns_server is not None:
                await dns_server.stop()
            for rec in recs.values():
                rec.close()
            for backend in backends.values():
                await backend.delete()


async def _handshaken(backend: WireGuardGoBackend, key: str) -> bool:
    return handshaken(await backend.status(), [key])
