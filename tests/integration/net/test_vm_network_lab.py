"""The VM network wired into the node, end to end on a 2-host lab with the mesh on: instances
pinned to h1 and h2 boot with an address in their host's VM subnet (written in their status,
shown by `vm show`), reach each other across the WireGuard mesh, and a removed instance's tap
and address are gone from its host."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import shutil
from typing import Any

import pytest
from lab_running import cli, running_lab
from waiting import until

from bench.support.guest_kit import GuestKit, Unavailable, build_guest_kit
from formation.lab import Lab
from formation.node.net.addressing import MeshLayout
from formation.node.net.vm_network import STATE_FILE, tap_name
from tests.conftest import needs_root

pytestmark = [needs_root(), pytest.mark.root, pytest.mark.qemu, pytest.mark.timeout(240)]

BOOT_S = 90
CIDR = "10.42.0.0/16"  # lab_running.found
OVERRIDES = {
    "mesh": {"enabled": True, "backend": "wireguard-go", "status_interval_s": 1.0},
    "vmm": {"backend": "qemu", "stop_grace_s": 1, "boot_timeout_s": BOOT_S},
    "resources": {"cpus": 2, "memory_mb": 1024, "disk_gb": 20},
}


@pytest.fixture(scope="module")
def lab():
    if shutil.which("qemu-system-x86_64") is None or shutil.which("nft") is None:
        pytest.skip("needs qemu-system-x86_64 and nft (scripts/system-packages.sh)")
    with running_lab(2, pretrust=False, node_overrides=OVERRIDES) as instance:
        yield instance


@pytest.fixture(scope="module")
def guest_kit() -> GuestKit:
    try:
        return build_guest_kit()
    except Unavailable as exc:
        pytest.skip(f"no test guest: {exc}")


async def vm_json(lab: Lab, host: str, *args: str) -> Any:
    out = await cli(lab, host, "vm", *args, "--json")
    assert out.returncode == 0, f"{host} vm {args}: {out.stderr}"
    return json.loads(out.stdout)


def console_path(lab: Lab, host: str, inst_id: str) -> str:
    index = lab.host(host).index
    return str(lab.names.host_dir(index) / "data" / "vms" / inst_id[:16] / "console.sock")


async def console_ok(path: str, command: str, tag: str) -> bool:
    reader, writer = await asyncio.open_unix_connection(path)
    try:
        writer.write(f'{command} >/dev/null 2>&1 && echo "{tag}""=ok" || echo "{tag}""=no"\n'
                     .encode())
        await writer.drain()
        seen = b""
        while f"{tag}=ok".encode() not in seen and f"{tag}=no".encode() not in seen:
            chunk = await asyncio.wait_for(reader.read(4096), 30)
            assert chunk, f"console closed; saw {seen!r}"
            seen += chunk
        return f"{tag}=ok".encode() in seen
    finally:
        writer.close()


@pytest.mark.network(joiners=("h2",), fields=("address", "wg_endpoints", "resources"))
async def test_instances_on_two_hosts_get_addresses_and_reach_each_other(
        lab: Lab, network: dict, guest_kit: GuestKit) -> None:
    imported = await cli(lab, "h1", "image", "import", str(guest_kit.kernel), "--initrd",
                         str(guest_kit.initrd), "--name", "guest", "--cmdline",
                         guest_kit.cmdline, "--json")
    assert imported.returncode == 0, imported.stderr
    made = {}
    for name, host in (("one", "h1"), ("two", "h2")):
        made[name] = (await vm_json(lab, "h1", "create", "--image", "guest", "--name", name,
                                    "--memory", "512", "--pin", host))["id"]

    async def addressed() -> dict[str, dict] | None:
        found = {i["name"]: i for i in (await vm_json(lab, "h1", "ls"))["instances"]}
        ok = all(found.get(n, {}).get("state") == "running" and found[n].get("address")
                 for n in made)
        return found if ok else None

    found = await until(addressed, BOOT_S, every_s=1, what="one and two running with addresses")
    layout = MeshLayout.parse(CIDR)
    for name, host in (("one", "h1"), ("two", "h2")):
        mesh_ip = network[host]["address"]
        slot = int(ipaddress.ip_address(mesh_ip)) - int(layout.network.network_address)
        subnet = layout.addresses(slot).vm_subnet
        assert ipaddress.ip_address(found[name]["address"]) in subnet, (name, subnet)

    one = console_path(lab, "h1", made["one"])
    two_address = found["two"]["address"]

    async def reaches() -> bool:  # the mesh's first handshake may take a moment
        return await console_ok(one, f"ping -c 1 -W 2 {two_address}", "cross")

    await until(reaches, 30, every_s=1, what="one pings two across the mesh")

    await vm_json(lab, "h1", "rm", "two")  # removal frees tap and address on h2

    def released() -> bool:
        links = lab.exec("h2", ["ip", "-o", "link"], capture_output=True, text=True).stdout
        held = lab.names.host_dir(lab.host("h2").index) / "data" / "vms" / STATE_FILE
        text = held.read_text() if held.exists() else ""
        return tap_name(made["two"]) not in links and made["two"] not in text

    await until(released, 30, every_s=0.5, what="two's tap and address released on h2")
