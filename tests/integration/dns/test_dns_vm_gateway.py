"""The VMs' resolver: a real node service (state + DNS parts) in a simulated host answers on
its VM bridge gateway, computed from its mesh slot, for a "guest" namespace plugged into the
bridge the way a VM's tap is. The bridge appears after the node started (the VM network part
makes it), loses its address and gets it back (a restart that rebuilds it): the node answers
whenever the address is there, without being told. Names follow the store: an instance's
address, its SRV record, and no name once it is deleted. Then a real QEMU guest (busybox
nslookup, resolver from ip=) resolves a name through the gateway, before and after a move."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest
from guest_kit_skip import guest_kit_or_skip
from settings_factory import make_settings
from waiting import until

from bench.support.dns_probe import dns_move_s
from bench.support.guest_kit import GUEST_UP, NET_MARKER
from bench.support.testbed import SimHost, Testbed, sh
from formation.node.dns.component import DnsComponent
from formation.node.net.host import call_in_netns
from formation.node.service import NodeService
from formation.node.state.component import StateComponent
from formation.node.state.store import StateStore

pytestmark = [pytest.mark.root, pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("ip", "nsenter")),
    reason="needs root, iproute2 and nsenter (simulated hosts)")]

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


@dataclass
class Node:
    service: NodeService
    store: StateStore
    dns: DnsComponent
    subnet: ipaddress.IPv4Network
    gateway: str

    async def run(self, name: str, address: str, ports: list[str]) -> tuple[str, str]:
        """An instance placed on this node, reporting `address`: (instance, placement)."""
        create = await self.store.append("instance.create", {"name": name, "spec": {
            "image": "ab" * 32, "vcpus": 1, "memory_mb": 512, "disk_gb": 5, "ports": ports}})
        inst = create.id.hex()
        return inst, await self.place(inst, address)

    async def place(self, inst: str, address: str) -> str:
        place = await self.store.append("instance.place", {
            "instance": inst, "node": self.store.identity.public_key_hex})
        await self.store.append("instance.status", {
            "instance": inst, "placement": place.id.hex(),
            "observed": {"state": "running", "address": address}})
        return place.id.hex()


@asynccontextmanager
async def dns_node(host: SimHost, base: Path) -> AsyncIterator[Node]:
    """A node service (state + DNS) in `host`, founder of network "lab", once its DNS is bound
    to the VM gateway of its slot."""
    settings = make_settings(base, dns={"enabled": True, "port": 53, "listen": ["127.0.0.1"]})
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
        subnet = ipaddress.IPv4Network(f"10.42.{slot}.0/24")  # the layout: one /24 a slot
        gateway = str(subnet.network_address + 1)
        await until(lambda: dns_part.gateway == gateway, what="dns bound to the VM gateway")
        yield Node(service, store, dns_part, subnet, gateway)
    finally:
        await service.stop()


async def make_bridge(host: SimHost, gateway: str) -> None:
    """What the VM network part does (later than the node's start)."""
    await host.run("ip", "link", "add", BRIDGE, "type", "bridge")
    await host.run("ip", "addr", "add", f"{gateway}/24", "dev", BRIDGE)
    await host.run("ip", "link", "set", BRIDGE, "up")


async def test_the_node_answers_its_vms_on_the_bridge_gateway(short_tmp: Path) -> None:
    async with Testbed(["a"]) as bed, dns_node(bed.hosts["a"], short_tmp / "a") as node:
        host, store, dns_part = bed.hosts["a"], node.store, node.dns
        subnet, gateway = node.subnet, node.gateway
        # the VM network part makes the bridge later; a guest plugs into it
        await make_bridge(host, gateway)
        guest = await bed.add_guest("a", "g1", BRIDGE, f"{subnet.network_address + 2}/24",
                                    gateway)
        assert guest.netns is not None
        vm_address = str(subnet.network_address + 2)
        inst, _placement = await node.run("web", vm_address, ["80/tcp"])

        async def resolves() -> bool:
            return addresses(await ask(guest.netns, gateway, "web.lab.fog")) == [vm_address]

        await until(resolves, what="web.lab.fog from the guest through its gateway")
        srv = await ask(guest.netns, gateway, "_80._tcp.web.lab.fog", "SRV")
        assert srv is not None and srv.answer[0][0].port == 80
        assert srv.answer[0].ttl == 2  # dns.instance_ttl_s: instances move

        # the instance moves (a new placement reports): both resolvers of this host follow,
        # measured by the benchmark's probe through the namespaces
        moved = str(subnet.network_address + 3)
        since = time.monotonic()
        await node.place(inst, moved)
        took = await dns_move_s([(guest.netns, gateway), (host.netns, "127.0.0.1")],
                                "web.lab.fog", moved, timeout_s=10, since=since)
        assert 0 < took < 10
        vm_address = moved

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


async def guest_console(sock: Path, line: str, expect: str, timeout_s: float = 20) -> str:
    """Types `line` on the guest's serial console and reads until `expect` comes back."""
    reader, writer = await asyncio.open_unix_connection(str(sock))
    try:
        writer.write(line.encode() + b"\n")
        await writer.drain()
        seen = b""
        async with asyncio.timeout(timeout_s):
            while expect.encode() not in seen:
                chunk = await reader.read(4096)
                assert chunk, f"console closed; saw {seen!r}"
                seen += chunk
        return seen.decode(errors="replace")
    finally:
        writer.close()


@pytest.mark.qemu
async def test_a_guest_resolves_instance_names_through_its_gateway(short_tmp: Path) -> None:
    """A real QEMU guest on the bridge, configured from ip= with the gateway as its DNS server
    (what the VM network part passes), finds another instance by name with busybox nslookup,
    and finds it at its new address once it moved."""
    kit = guest_kit_or_skip()
    async with Testbed(["a"]) as bed, dns_node(bed.hosts["a"], short_tmp / "a") as node:
        host = bed.hosts["a"]
        await make_bridge(host, node.gateway)
        tap = "fvmdnsguest"
        await host.run("ip", "tuntap", "add", tap, "mode", "tap")
        await host.run("ip", "link", "set", tap, "master", BRIDGE, "up")
        base = node.subnet.network_address
        inst, _ = await node.run("web", str(base + 9), ["80/tcp"])
        work = short_tmp / "vm"
        work.mkdir()
        sock, log = work / "console.sock", work / "serial.log"
        cmdline = (f"{kit.cmdline} tsc_early_khz=2000000 "
                   f"ip={base + 2}::{node.gateway}:255.255.255.0:g1:eth0:off:{node.gateway}")
        qemu = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", host.netns, "qemu-system-x86_64", "-M", "microvm",
            "-accel", "tcg", "-cpu", "max", "-m", "256M", "-nodefaults", "-no-user-config",
            "-display", "none", "-no-reboot", "-kernel", str(kit.kernel),
            "-initrd", str(kit.initrd), "-append", cmdline,
            "-chardev", f"socket,id=s0,path={sock},server=on,wait=off,logfile={log}",
            "-serial", "chardev:s0",
            "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
            "-device", "virtio-net-device,netdev=n0",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        try:
            def serial() -> str:
                return log.read_text(errors="replace") if log.exists() else ""

            await until(lambda: GUEST_UP in serial(), 60, what="the guest's shell",
                        context=lambda: serial()[-1500:])
            assert f"{NET_MARKER} {base + 2}/24 gw {node.gateway} dns {node.gateway}" in serial()

            async def finds(address: str) -> bool:
                out = await guest_console(sock, "echo found=$(nslookup web.lab.fog | grep -c "
                                          f"'{address}$'); echo done-$((40+2))", "done-42")
                return re.search(r"found=1\b", out) is not None

            await until(lambda: finds(str(base + 9)), 30, what="web.lab.fog from the guest")
            await node.place(inst, str(base + 10))  # web moved; its new host reports
            await until(lambda: finds(str(base + 10)), 30,
                        what="web.lab.fog at its new address from the guest")
        finally:
            qemu.kill()
            await qemu.wait()
