"""Which address an instance gets and which addresses count as moved: pure rules."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from formation.node.net import egress
from formation.node.net.addressing import MeshLayout
from formation.node.net.follow import desired_peers
from formation.node.net.vm_addresses import (
    AddressesExhausted,
    choose,
    mac_for,
    moved,
    subnet_of,
    usable,
)
from formation.node.net.vm_network import Attachment, hostname_for, tap_name
from formation.node.vmm import seed, workdir
from formation.node.vmm.machine import MachineSpec, Nic

LAYOUT = MeshLayout.parse("10.88.0.0/16", 24)
H1 = LAYOUT.addresses(1)  # 10.88.1.0/24, gateway 10.88.1.1
H3 = LAYOUT.addresses(3)


def test_lowest_free_host_never_the_gateway() -> None:
    assert choose(H1, set(), None, LAYOUT) == "10.88.1.2"
    assert choose(H1, {"10.88.1.2", "10.88.1.3"}, None, LAYOUT) == "10.88.1.4"


def test_an_instance_keeps_its_address_even_from_another_subnet() -> None:
    assert choose(H1, set(), "10.88.3.7", LAYOUT) == "10.88.3.7"  # migrated in
    assert choose(H1, {"10.88.3.7"}, "10.88.3.7", LAYOUT) == "10.88.1.2"  # taken here


@pytest.mark.parametrize("forged", [
    "10.88.1.1",  # a gateway
    "10.88.1.0", "10.88.1.255",  # network and broadcast of a subnet
    "10.88.0.5",  # the mesh pool: a node's own address
    "192.0.2.1",  # outside the network
    "fe80::1", "not an ip",
])
def test_a_status_naming_an_impossible_address_is_not_kept(forged: str) -> None:
    assert not usable(LAYOUT, forged)
    assert choose(H1, set(), forged, LAYOUT) == "10.88.1.2"


def test_a_full_subnet_says_so() -> None:
    small = MeshLayout.parse("10.9.0.0/24", 30)  # /30: one usable host besides the gateway
    mine = small.addresses(1)
    assert choose(mine, set(), None, small) == "10.9.0.6"
    with pytest.raises(AddressesExhausted, match="is full"):
        choose(mine, {"10.9.0.6"}, None, small)


def test_macs_are_stable_locally_administered_and_distinct() -> None:
    a, b = mac_for("ab" * 16), mac_for("cd" * 16)
    assert a == mac_for("ab" * 16) and a != b
    assert a.startswith("02:") and len(a.split(":")) == 6


def test_moved_addresses_are_routed_as_32s_to_the_node_running_them() -> None:
    nodes = [{"key": "h1", "address": "10.88.0.1"}, {"key": "h3", "address": "10.88.0.3"}]
    instances = [
        {"key": "a", "placement": "h3", "placement_op": "p1",
         "observed@p1": {"state": "running", "address": "10.88.1.5"}},  # migrated h1 -> h3
        {"key": "b", "placement": "h1", "placement_op": "p2",
         "observed@p2": {"state": "running", "address": "10.88.1.6"}},  # at home
        {"key": "c", "placement": "h1", "placement_op": "p3",
         "observed@old": {"state": "running", "address": "10.88.3.9"}},  # superseded status
        {"key": "d", "placement": "h1", "placement_op": "p4",
         "observed@p4": {"state": "running", "address": "10.88.1.1"}},  # forged: a gateway
    ]
    assert moved(instances, nodes, LAYOUT) == {"h3": ["10.88.1.5/32"]}
    assert subnet_of(LAYOUT, "10.88.0.3") == H3


def test_ip_argument_and_names() -> None:
    att = Attachment((Nic("fvmabc", "02:00:00:00:00:01"),), "10.88.1.2", 24, "10.88.1.1",
                     "10.88.1.1", "web-1", "02:00:00:00:00:01")
    assert att.cmdline == "ip=10.88.1.2::10.88.1.1:255.255.255.0:web-1:eth0:off:10.88.1.1"
    assert hostname_for("Web_Server.1") == "web-server-1" and hostname_for("__") == "vm"
    assert len(tap_name("ab" * 32)) <= 15
    files = seed.files("inst", att)
    assert '"local-hostname": "web-1"' in files["meta-data"]
    assert '"10.88.1.2/24"' in files["network-config"] and "02:00:00:00:00:01" in files[
        "network-config"]


def test_the_nics_and_seed_survive_the_workdir_meta(tmp_path: Path) -> None:
    spec = MachineSpec(instance="ab" * 16, name="x", vcpus=1, memory_mb=64,
                       kernel=Path("/k"), workdir=tmp_path, serial_log=tmp_path / "s.log",
                       nics=(Nic("fvmabab", "02:00:00:00:00:02"),), seed=tmp_path / "seed.img")
    workdir.write_meta(spec, {"boot": 1})
    found = workdir.read_meta(tmp_path)
    assert found is not None and found[0] == spec


def test_a_peer_running_a_moved_instance_carries_its_32() -> None:
    nodes = [{"key": k, "address": a, "wireguard_key": f"wg-{k}", "roles": ["member"]}
             for k, a in (("h1", "10.88.0.1"), ("h3", "10.88.0.3"))]
    peers = {p.node_id: p for p in desired_peers(nodes, "h1", "10.88.0.0/16", 24,
                                                 {"h3": ["10.88.1.5/32"]})}
    assert peers["h3"].allowed_ips == ("10.88.0.3/32", "10.88.3.0/24", "10.88.1.5/32")
    assert set(peers) == {"h3"}


def test_a_member_reporting_another_vms_address_pulls_no_traffic() -> None:
    """Hostile: h3 writes h1's VM address (10.88.1.5) into the status of an instance it runs.
    Had it worked, every node would send 10.88.1.5 to h3 and h1 would route its own VM away."""
    nodes = [{"key": "h1", "address": "10.88.0.1"}, {"key": "h3", "address": "10.88.0.3"}]
    instances = [
        {"key": "home", "placement": "h1", "placement_op": "p1",
         "observed@p1": {"state": "running", "address": "10.88.1.5"}},
        {"key": "thief", "placement": "h3", "placement_op": "p2",
         "observed@p2": {"state": "running", "address": "10.88.1.5"}},
        {"key": "moved", "placement": "h3", "placement_op": "p3",
         "observed@p3": {"state": "running", "address": "10.88.1.6"}},
    ]
    assert moved(instances, nodes, LAYOUT) == {"h3": ["10.88.1.6/32"]}
    # and h1 never hands the contested address out again while it is reported
    assert choose(LAYOUT.addresses(1), {"10.88.1.2", "10.88.1.3", "10.88.1.4", "10.88.1.5"},
                  None, LAYOUT) == "10.88.1.6"


def test_vms_may_not_reach_the_nodes_mesh_addresses_but_may_reach_other_vms() -> None:
    text = egress.Rules("formbr0", "10.88.0.0/16", "10.88.1.1", ("10.88.1.3",),
                        "10.88.0.0/24").text()
    drop_nodes = text.index('iifname "formbr0" ip daddr 10.88.0.0/24 drop')
    assert drop_nodes < text.index('iifname "formbr0" ip daddr 10.88.0.0/16 accept')
    assert "elements = { 10.88.1.3 }" in text and text.count("table inet formation_vm {") == 2


@pytest.mark.skipif(not (shutil.which("mkfs.vfat") and shutil.which("mcopy")),
                    reason="needs dosfstools and mtools")
async def test_boot_network_writes_the_seed_and_appends_ip_unless_given(tmp_path: Path) -> None:
    att = Attachment((Nic("fvmabc", "02:00:00:00:00:01"),), "10.88.1.2", 24, "10.88.1.1",
                     "10.88.1.1", "web-1", "02:00:00:00:00:01")
    nics, disk, cmdline = await seed.boot_network(att, tmp_path, "inst", "console=ttyS0")
    assert nics == att.nics and cmdline == f"console=ttyS0 {att.cmdline}"
    assert disk is not None and b"CIDATA" in disk.read_bytes()[:512]
    listing = (await asyncio.to_thread(subprocess.run, ["mdir", "-b", "-i", str(disk), "::"],
                                       capture_output=True, text=True, check=True)).stdout
    assert {"meta-data", "user-data", "network-config"} <= {
        line.rsplit("/", 1)[-1] for line in listing.split()}
    _, _, own = await seed.boot_network(att, tmp_path, "inst", "console=ttyS0 ip=dhcp")
    assert own == "console=ttyS0 ip=dhcp"
    assert await seed.boot_network(None, tmp_path, "inst", "x") == ((), None, "x")
