"""VM networking across hosts on the fleet lab (issue 16): guests on h1 and h3 get an address in
their host's VM subnet, ping each other by address and by `<name>.lab.fog` (their resolver is
their host's VM gateway), and what one sends the other crosses the underlay only inside
WireGuard: a capture on the lab's switch never holds the payload, while a capture in h1's own
namespace (its bridge and the guest's tap) does - the positive control that the payload was sent
and that a capture would have seen it. Removing an instance frees its tap, its address (the next
guest on that host gets it again) and its DNS name on every host."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from waiting import until

from bench.support.fleet_lab import CIDR, HOSTS, NETWORK, ZONE, Fleet
from bench.support.guest_kit import GUEST_UP, NET_MARKER
from formation.node.net.addressing import MeshLayout

pytestmark = [pytest.mark.root, pytest.mark.qemu, pytest.mark.timeout(300)]

TAP_PREFIX = "fvm"  # + 12 hex of the instance id (formation/node/net/vm_network.py)
PORT = 7000


def vm_subnet(fleet: Fleet, host: str) -> ipaddress.IPv4Network:
    """The host's VM subnet, from its mesh address's slot (formation/node/net/addressing.py)."""
    layout = MeshLayout.parse(CIDR)
    slot = int(ipaddress.ip_address(fleet.mesh_ip(host))) - int(layout.network.network_address)
    return layout.addresses(slot).vm_subnet


def tap_name(inst: dict[str, Any]) -> str:
    return f"{TAP_PREFIX}{inst['id'][:12]}"


async def links(fleet: Fleet, host: str) -> set[str]:
    out = await fleet.run(host, "ip", "-o", "link", "show")
    assert out.returncode == 0, out.stderr
    return {m.group(1) for m in re.finditer(r"^\d+: ([^:@]+)", out.stdout, re.M)}


async def resolve(fleet: Fleet, host: str, name: str) -> list[str]:
    """What the DNS server of `host` (on its mesh address) answers for `name`."""
    out = await fleet.run(host, "dig", f"@{fleet.mesh_ip(host)}", "+time=2", "+tries=1",
                          "+short", name)
    assert out.returncode == 0, f"dig on {host}: {out.stdout}{out.stderr}"
    return out.stdout.split()


async def ok(fleet: Fleet, inst: dict[str, Any], command: str, timeout_s: float = 60) -> str:
    rc, out = await fleet.type(inst, command, timeout_s)
    assert rc == 0, f"{inst['name']}: `{command}` exited {rc}: {out}"
    return out


class Capture:
    """tcpdump on every interface of a namespace (`ip netns exec`), raw packets to a file.
    Sized as in tests/integration/mesh_support.py: small frames, a big ring, so a loaded
    machine does not drop packets (and the drop count is checked)."""

    def __init__(self, netns: str, path: Path) -> None:
        self.netns, self.path = netns, path
        self.proc: asyncio.subprocess.Process | None = None
        self.stats = ""

    async def __aenter__(self) -> Capture:
        self.proc = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", self.netns, "tcpdump", "-Z", "root", "--immediate-mode",
            "-i", "any", "-U", "-n", "-s", "2048", "-B", "16384", "-w", str(self.path),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        assert self.proc.stderr is not None
        seen = b""
        while b"listening on" not in seen:
            line = await asyncio.wait_for(self.proc.stderr.readline(), 10)
            assert line, f"tcpdump did not start: {seen!r}"
            seen += line
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        self.stats = (await asyncio.wait_for(self.proc.stderr.read(), 10)).decode()
        await asyncio.wait_for(self.proc.wait(), 10)

    def data(self) -> bytes:
        return self.path.read_bytes() if self.path.exists() else b""

    @property
    def dropped(self) -> int:
        match = re.search(r"(\d+) packets? dropped by kernel", self.stats)
        assert match, f"tcpdump reported no drop count: {self.stats!r}"
        return int(match.group(1))

    async def count(self, bpf: str) -> int:
        proc = await asyncio.create_subprocess_exec(
            "tcpdump", "-r", str(self.path), "-n", bpf, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL)
        out, _ = await proc.communicate()
        return len(out.splitlines())


@pytest.fixture(scope="module")
def pair(fleet: Fleet) -> dict[str, dict[str, Any]]:
    """web1 on h1 and web3 on h3, Running with their addresses, their networks configured
    (made outside the tests' loops, like the lab: plain data comes back)."""
    return asyncio.run(_pair(fleet))


async def _pair(fleet: Fleet) -> dict[str, dict[str, Any]]:
    await asyncio.gather(fleet.create("web1", "h1"), fleet.create("web3", "h3"))
    got = dict(zip(("h1", "h3"), await asyncio.gather(
        fleet.running("web1", "h1"), fleet.running("web3", "h3")), strict=True))
    for inst in got.values():
        await fleet.serial_has(inst, GUEST_UP)
        assert f"{NET_MARKER} {inst['address']}/" in await fleet.serial_has(inst, NET_MARKER)
    return got


async def test_guests_on_two_hosts_reach_each_other_by_address_and_name(
        fleet: Fleet, pair: dict[str, dict[str, Any]]) -> None:
    web1, web3 = pair["h1"], pair["h3"]
    for host, inst in pair.items():
        assert ipaddress.ip_address(inst["address"]) in vm_subnet(fleet, host), inst
        assert tap_name(inst) in await links(fleet, host)
    assert tap_name(web1) not in await links(fleet, "h3")

    await ok(fleet, web1, f"ping -c 2 -W 5 {web3['address']}")
    await ok(fleet, web3, f"ping -c 2 -W 5 {web1['address']}")
    # by name, through the guest's resolver (its host's VM gateway, given by the node)
    gateway = next(vm_subnet(fleet, "h1").hosts())
    assert f"nameserver {gateway}" in await ok(fleet, web1, "cat /etc/resolv.conf")
    answer = await ok(fleet, web1, f"nslookup web3.{NETWORK}.{ZONE}")
    assert web3["address"] in answer
    await ok(fleet, web1, f"ping -c 2 -W 5 web3.{NETWORK}.{ZONE}")
    await ok(fleet, web3, f"ping -c 2 -W 5 web1.{NETWORK}.{ZONE}")
    # every host's DNS gives the same answer
    for host in HOSTS:
        assert await resolve(fleet, host, f"web3.{NETWORK}.{ZONE}") == [web3["address"]]


async def test_guest_traffic_crosses_the_underlay_only_encrypted(
        fleet: Fleet, pair: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    web1, web3 = pair["h1"], pair["h3"]
    token = secrets.token_hex(6)
    # the payload, built in the guest so the typed command does not hold it literally
    marker = f"FLEET-{token}-42-CLEARTEXT"
    make = f"FLEET-{token}-$((6*7))-CLEARTEXT"
    await ok(fleet, web3, f"rm -f /tmp/got; (nc -l -p {PORT} > /tmp/got &)")
    underlay = Capture(fleet.lab.names.hub, tmp_path / "underlay.pcap")
    inside = Capture(fleet.lab.host("h1").netns, tmp_path / "h1.pcap")
    async with underlay, inside:
        async def sent() -> bool:
            rc, _ = await fleet.type(web1, f"echo {make} | nc -w 2 {web3['address']} {PORT}")
            return rc == 0

        await until(sent, 30, every_s=1, what="web1's nc to web3 (its listener up)")
        await until(lambda: marker.encode() in inside.data(), 15,
                    what="the payload in h1's own capture (its tap and bridge)")
        received = await ok(fleet, web3, "cat /tmp/got")
        assert marker in received
    assert underlay.dropped == 0 and inside.dropped == 0, (underlay.stats, inside.stats)
    assert marker.encode() not in underlay.data()
    assert token.encode() not in underlay.data()
    assert await underlay.count("udp port 51820") > 0, "no WireGuard traffic on the underlay"
    assert await underlay.count(f"tcp port {PORT}") == 0


async def test_removing_an_instance_frees_its_tap_address_and_name_everywhere(
        fleet: Fleet, pair: dict[str, dict[str, Any]]) -> None:
    web1 = pair["h1"]
    name = f"gone.{NETWORK}.{ZONE}"
    await fleet.create("gone", "h3")
    gone = await fleet.running("gone", "h3")
    await fleet.serial_has(gone, GUEST_UP)  # its network is configured before this line
    address = gone["address"]
    assert tap_name(gone) in await links(fleet, "h3")
    for host in HOSTS:
        assert await resolve(fleet, host, name) == [address]
    await ok(fleet, web1, f"ping -c 1 -W 5 {address}")

    await fleet.delete("gone")
    await fleet.gone("gone")

    async def freed() -> bool:
        for host in HOSTS:
            if tap_name(gone) in await links(fleet, host):
                return False
            if await resolve(fleet, host, name):
                return False
        return True

    await until(freed, 30, every_s=0.5, what="gone's tap and name gone on every host")
    rc, _ = await fleet.type(web1, f"ping -c 1 -W 2 {address}")
    assert rc != 0, "the removed guest's address still answers"
    # the address is free: the next guest on h3 gets it again (lowest free host)
    await fleet.create("again", "h3")
    again = await fleet.running("again", "h3")
    assert again["address"] == address
    await fleet.delete("again")
    await fleet.gone("again")
