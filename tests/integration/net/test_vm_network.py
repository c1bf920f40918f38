"""The VM network of one host, for real: a network namespace stands for the host (its bridge,
taps, nftables table), another for the underlay beyond it, and two QEMU/TCG guests of the test
kit boot on the bridge with the address, MAC and `ip=` argument VmNetwork gives them.

One module-scoped host (namespaces named with a per-run prefix, always removed) and one pair
of guests: booting is the slow part, every check after it is a ping or two."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from guest_kit_skip import guest_kit_or_skip
from waiting import until

from bench.support.guest_kit import GUEST_UP, NET_MARKER, GuestKit
from formation.node.net import egress, links
from formation.node.net.addressing import MeshLayout, NodeAddresses
from formation.node.net.host import NetHost
from formation.node.net.vm_network import (
    BRIDGE,
    STATE_FILE,
    Attachment,
    VmNetwork,
    route_moved,
    tap_name,
)
from formation.node.vmm import qemu_args, seed
from formation.node.vmm.machine import MachineSpec
from formation.node.vmm.qemu import QemuDriver, QemuMachine

pytestmark = [
    pytest.mark.qemu, pytest.mark.root, pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft")
                       or not Path("/dev/net/tun").exists(),
                       reason="needs root, /dev/net/tun and nft (Debian package nftables)"),
]

LAYOUT = MeshLayout.parse("10.88.0.0/16", 24)
MINE = LAYOUT.addresses(1)  # 10.88.1.0/24, gateway 10.88.1.1
UNDERLAY_HOST, OUTSIDE = "198.51.100.1", "198.51.100.2"
BOOT_S = 120.0
PREFIX = f"fvn{os.getpid() % 100000}"
A_ID, B_ID = "a1" * 16, "b2" * 16


def sh(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


@dataclass
class Host:
    ns: str
    outside_ns: str
    net: NetHost
    state_dir: Path
    wrapper: Path  # qemu-system-x86_64 inside the host's namespace (the tap lives there)

    def network(self) -> VmNetwork:
        async def where() -> tuple[MeshLayout, NodeAddresses]:
            return LAYOUT, MINE

        async def instances() -> list[dict[str, Any]]:
            return []

        return VmNetwork(where, instances, self.state_dir / STATE_FILE, self.net)

    def ip(self, *args: str) -> str:
        return sh("ip", "-n", self.ns, *args)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """The host namespace, joined by a veth to an "underlay" namespace that has no route to
    the VM subnets (so only NAT lets a VM's packets come back)."""
    base = tmp_path_factory.mktemp("vmnet")
    ns, outside = f"{PREFIX}h", f"{PREFIX}u"
    wrapper = base / "qemu-in-ns"
    wrapper.write_text(f'#!/bin/sh\nexec nsenter --net=/run/netns/{ns} '
                       f'qemu-system-x86_64 "$@"\n')
    wrapper.chmod(0o755)
    try:
        sh("ip", "netns", "add", ns)
        sh("ip", "netns", "add", outside)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "link", "add", "under0", "type", "veth", "peer", "name", "under1",
           "netns", outside)
        sh("ip", "-n", ns, "addr", "add", f"{UNDERLAY_HOST}/24", "dev", "under0")
        sh("ip", "-n", ns, "link", "set", "under0", "up")
        sh("ip", "-n", outside, "addr", "add", f"{OUTSIDE}/24", "dev", "under1")
        sh("ip", "-n", outside, "link", "set", "under1", "up")
        # a veth stands in for the mesh: the route to the rest of the network goes there
        sh("ip", "-n", ns, "link", "add", "formnet0", "type", "veth", "peer", "name", "formnet1")
        sh("ip", "-n", ns, "link", "set", "formnet1", "up")
        sh("ip", "-n", ns, "link", "set", "formnet0", "up")
        sh("ip", "-n", ns, "route", "add", str(LAYOUT.network), "dev", "formnet0")
        yield Host(ns, outside, NetHost(netns=ns, exec_prefix=("ip", "netns", "exec", ns)),
                   base, wrapper)
    finally:
        for name in (ns, outside):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


@dataclass
class Guest:
    spec: MachineSpec
    machine: QemuMachine
    att: Attachment


async def boot(host: Host, kit: GuestKit, inst_id: str, name: str, egress_on: bool,
               **inst: Any) -> Guest:
    att = await host.network().attach(inst_id, {"name": name, "spec": {"egress": egress_on},
                                                **inst})
    wd = host.state_dir / inst_id[:16]
    wd.mkdir(exist_ok=True)
    spec = MachineSpec(instance=inst_id, name=name, vcpus=1, memory_mb=256, kernel=kit.kernel,
                       initrd=kit.initrd, cmdline=f"{kit.cmdline} {att.cmdline}", workdir=wd,
                       serial_log=wd / "serial.log", nics=att.nics,
                       seed=await seed.write(wd, inst_id, att))
    machine = await QemuDriver(str(host.wrapper), "tcg").create(spec)
    await machine.boot()
    return Guest(spec, machine, att)


def serial(spec: MachineSpec) -> str:
    try:
        return spec.serial_log.read_text(errors="replace")
    except FileNotFoundError:
        return ""


async def console(g: Guest, command: str, tag: str) -> bool:
    """Runs `command` on the guest's console; True when it succeeded. The answer is
    `<tag>=ok`/`<tag>=no`, spelt so that the echo of the typed line never matches it."""
    reader, writer = await asyncio.open_unix_connection(
        str(g.spec.workdir / qemu_args.CONSOLE_SOCKET))
    try:
        writer.write(f'{command} >/dev/null 2>&1 && echo "{tag}""=ok" || echo "{tag}""=no"\n'
                     .encode())
        await writer.drain()
        seen = b""
        while True:
            chunk = await asyncio.wait_for(reader.read(4096), 30)
            assert chunk, f"console closed; saw {seen!r}"
            seen += chunk
            if f"{tag}=ok".encode() in seen:
                return True
            if f"{tag}=no".encode() in seen:
                return False
    finally:
        writer.close()


async def network_up(g: Guest) -> None:
    def up() -> bool:
        text = serial(g.spec)
        return GUEST_UP in text and NET_MARKER in text

    await until(up, BOOT_S, what=f"{g.spec.name} up with its network",
                context=lambda: serial(g.spec)[-1500:])


async def ping(g: Guest, address: str, tag: str) -> bool:
    return await console(g, f"ping -c 1 -W 3 {address}", tag)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def guests(host: Host) -> AsyncIterator[tuple[Guest, Guest]]:
    guest_kit = guest_kit_or_skip()
    a = await boot(host, guest_kit, A_ID, "alpha", egress_on=False)
    try:
        b = await boot(host, guest_kit, B_ID, "beta", egress_on=True)
        try:
            for g in (a, b):
                await network_up(g)
            yield a, b
        finally:
            with contextlib.suppress(Exception):
                await b.machine.destroy()
    finally:
        with contextlib.suppress(Exception):
            await a.machine.destroy()


async def test_guests_on_the_bridge_reach_each_other_and_the_gateway(
        guests: tuple[Guest, Guest]) -> None:
    a, b = guests
    assert (a.att.address, b.att.address) == ("10.88.1.2", "10.88.1.3")
    assert f"{NET_MARKER} 10.88.1.2/24 gw 10.88.1.1 dns 10.88.1.1" in serial(a.spec)
    assert await console(a, f"grep -qi {a.att.mac} /sys/class/net/eth0/address", "mac")
    assert await ping(a, b.att.address, "ab")
    assert await ping(b, a.att.address, "ba")
    assert await ping(a, "10.88.1.1", "agw")
    # the seed disk is there for cloud-init: a vfat labelled CIDATA (the kit has no root disk)
    assert await console(a, "dd if=/dev/vda bs=512 count=1 | grep -q CIDATA", "seed")


async def test_only_egress_instances_reach_the_underlay(
        host: Host, guests: tuple[Guest, Guest]) -> None:
    a, b = guests
    assert not await ping(a, OUTSIDE, "aout")  # isolated: dropped in forward
    assert not await ping(a, UNDERLAY_HOST, "ahost")  # nor the host's own underlay address
    assert await ping(b, OUTSIDE, "bout")  # masqueraded: the outside has no route back


async def test_a_restarted_service_adopts_bridge_taps_and_addresses(
        host: Host, guests: tuple[Guest, Guest]) -> None:
    a, b = guests
    again = host.network()  # a new service: reads what the old one handed out
    att = await again.attach(A_ID, {"name": "alpha", "spec": {"egress": False}})
    assert att == a.att
    assert await again.address_of(B_ID) == b.att.address
    links_now = host.ip("-o", "link", "show")
    assert links_now.count(f" {BRIDGE}:") == 1
    taps = [line.split()[1].rstrip(":") for line in links_now.splitlines()
            if line.split()[1].startswith("fvm")]
    assert sorted(taps) == sorted([tap_name(A_ID), tap_name(B_ID)])
    assert [a for a in await links.addresses(host.net, BRIDGE) if ":" not in a] == [
        "10.88.1.1/24"]
    tables = sh("ip", "netns", "exec", host.ns, "nft", "list", "tables")
    assert tables.count(egress.TABLE) == 1
    assert await ping(a, b.att.address, "adopted")  # nothing was torn down


async def test_a_migrated_in_address_is_kept_and_reached_through_proxy_arp(
        host: Host, guests: tuple[Guest, Guest]) -> None:
    """An instance whose current status names an address of h3's subnet (it migrated from
    there) keeps it here: routed as a /32 onto the bridge, its old gateway answered by
    proxy_arp, so it and the local VMs reach each other without reconfiguring the guest."""
    a, _b = guests
    moved_id = "d4" * 16
    kit = guest_kit_or_skip()
    c = await boot(host, kit, moved_id, "migrant", egress_on=False, placement_op="p",
                   **{"observed@p": {"state": "running", "address": "10.88.3.9"}})
    try:
        assert (c.att.address, c.att.gateway) == ("10.88.3.9", "10.88.3.1")
        await network_up(c)
        assert "10.88.3.9 dev formbr0" in host.ip("route", "show", "10.88.3.9")
        assert await ping(c, a.att.address, "ca")
        assert await ping(a, c.att.address, "ac")
    finally:
        await c.machine.destroy()
        await host.network().release(moved_id)
    assert host.ip("route", "show", "10.88.3.9").strip() == ""


async def test_our_subnets_address_running_elsewhere_is_routed_into_the_mesh(
        host: Host, guests: tuple[Guest, Guest]) -> None:
    """The other half of a move: 10.88.1.77 of our subnet runs on h3 now, so its /32 leaves
    through the mesh interface instead of the bridge; a /32 of another node's subnet, or one
    we run ourselves, is none of this host's business. Gone when it is no longer moved."""
    moved_32s = {"h3": ["10.88.1.77/32", "10.88.2.5/32"], "me": ["10.88.3.9/32"]}
    routes = await route_moved(host.net, "formnet0", MINE, moved_32s, "me", set())
    assert routes == {"10.88.1.77/32"}
    assert "dev formnet0" in host.ip("route", "show", "10.88.1.77")
    assert host.ip("route", "show", "10.88.2.5").strip() == ""
    assert await route_moved(host.net, "formnet0", MINE, {}, "me", routes) == set()
    assert host.ip("route", "show", "10.88.1.77").strip() == ""


async def test_removal_frees_the_tap_and_the_address(
        host: Host, guests: tuple[Guest, Guest]) -> None:
    _a, b = guests
    await b.machine.destroy()
    net = host.network()
    await net.release(B_ID)
    assert await links.link_index(host.net, tap_name(B_ID)) is None
    assert await net.address_of(B_ID) is None
    assert "10.88.1.3" not in await egress.table_text(host.net)  # its egress is gone too
    await net.release(B_ID)  # again: nothing to do
    c = await net.attach("c3" * 16, {"name": "gamma", "spec": {}})
    assert c.address == "10.88.1.3"  # b's address, free again
    await net.release("c3" * 16)
