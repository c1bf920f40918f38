"""The VMs' network on one host: a bridge (`formbr0`) holding the gateway address of this node's
VM subnet, a persistent tap per VM on it (`fvm` + 12 hex of the instance id), an address per
instance, forwarding, and the nftables table (egress.py). The reconciler calls `attach` before
it boots a VM and `release` when the instance is deleted or no longer placed here.

Why these choices:
  - the subnet follows from this node's mesh address in the state (addressing.py): every node
    computes every other node's subnet, and the mesh routes each subnet to its node;
  - proxy_arp on the bridge: a guest that migrated in keeps its address and its old gateway,
    both in another node's subnet; the host answers ARP for anything it routes elsewhere, so
    the guest needs no reconfiguration. Its address is routed here as a /32 (and over the mesh
    to here by the other nodes: follow.py);
  - what this node handed out is kept in a small JSON file (`network.json` in the VM run
    directory): a restarted node service finds its addresses, and by name its bridge and taps,
    again, rather than handing out duplicates. Taps are persistent, so VMs adopted by the
    restarted service keep their network without a blip."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from formation.node.net import egress, links
from formation.node.net.addressing import MeshLayout, NodeAddresses
from formation.node.net.host import LOCAL_HOST, NetHost
from formation.node.net.vm_addresses import (
    choose,
    layout_of,
    mac_for,
    placed_addresses,
    subnet_of,
)
from formation.node.state.instance_view import current_observed
from formation.node.vmm.machine import Nic, VmmError

if TYPE_CHECKING:
    from formation.node.service import NodeService
    from formation.node.state.store import StateStore

log = logging.getLogger(__name__)

BRIDGE = "formbr0"
TAP_PREFIX = "fvm"
# The same (locally administered) MAC on every host's bridge: a guest that migrates keeps the
# neighbour entry of its gateway, and the new host's bridge answers to it at once.
BRIDGE_MAC = "02:66:6f:72:6d:01"
STATE_FILE = "network.json"
SUBNET_WAIT_S = 30.0  # a node just admitted claims its mesh address within moments
SUBNET_POLL_S = 0.2

Where = Callable[[], Awaitable[tuple[MeshLayout, NodeAddresses] | None]]
Instances = Callable[[], Awaitable[list[dict[str, Any]]]]


def tap_name(instance: str) -> str:
    return TAP_PREFIX + instance[:12]


def hostname_for(name: str) -> str:
    """A DNS label from the instance's name (the guest's hostname)."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
    return label or "vm"


@dataclass(frozen=True)
class Attachment:
    """What a VM is booted with: its NIC, and how the guest learns its network (the `ip=`
    kernel argument for directly booted kernels; the same values go into the NoCloud seed)."""

    nics: tuple[Nic, ...]
    address: str
    prefix: int
    gateway: str
    dns: str  # the node itself answers on the gateway address
    hostname: str
    mac: str

    @property
    def netmask(self) -> str:
        return str(ipaddress.IPv4Network(f"0.0.0.0/{self.prefix}").netmask)

    @property
    def cmdline(self) -> str:
        """ip=CLIENT:SERVER:GATEWAY:NETMASK:HOSTNAME:DEVICE:AUTOCONF:DNS0"""
        return (f"ip={self.address}::{self.gateway}:{self.netmask}:{self.hostname}"
                f":eth0:off:{self.dns}")


class VmNetworkHooks(Protocol):
    """What the reconciler asks of the VM network (None there: VMs get no network)."""

    async def attach(self, instance: str, inst: dict[str, Any]) -> Attachment: ...

    async def release(self, instance: str) -> None: ...

    async def address_of(self, instance: str) -> str | None: ...


class VmNetwork:
    def __init__(self, where: Where, instances: Instances, state_file: Path,
                 host: NetHost = LOCAL_HOST, bridge: str = BRIDGE) -> None:
        """`where`: the network's layout and this node's VM subnet (None until it has one);
        `instances`: the instances view (addresses others hold, an instance's current one)."""
        self.where, self.instances, self.state_file = where, instances, state_file
        self.host, self.bridge = host, bridge
        self._held: dict[str, dict[str, Any]] = {}  # instance -> {"address", "egress"}
        self._loaded = False
        self._lock = asyncio.Lock()

    # the hooks ------------------------------------------------------------------------------
    async def address_of(self, instance: str) -> str | None:
        """The address this node gave the instance (also one a VM adopted after a restart of
        the node service holds: read from network.json)."""
        await self._load()
        return self._held_address(instance)

    def _held_address(self, instance: str) -> str | None:
        held = self._held.get(instance)
        return str(held["address"]) if held else None

    async def attach(self, instance: str, inst: dict[str, Any]) -> Attachment:
        """The instance's tap on the bridge and its address (the one it holds, else a free
        one); idempotent: attaching again changes nothing."""
        async with self._lock:
            await self._load()
            layout, mine = await self._wait_subnet()
            await self._ensure_bridge(mine)
            keep = self._held_address(instance) or current_observed(inst).get("address")
            taken = {str(h["address"]) for k, h in self._held.items() if k != instance}
            taken |= {a for k, (_n, a) in placed_addresses(await self.instances()).items()
                      if k != instance}
            address = choose(mine, taken, keep if isinstance(keep, str) else None, layout)
            spec = inst.get("spec") or {}
            self._held[instance] = {"address": address, "egress": bool(spec.get("egress"))}
            await self._save()
            tap = tap_name(instance)
            try:
                await links.ensure_tap(self.host, tap, self.bridge)
                if ipaddress.ip_address(address) not in mine.vm_subnet:  # migrated in
                    await links.add_route(self.host, f"{address}/32", self.bridge)
                await self._apply_rules(layout, mine)
            except Exception as exc:
                raise VmmError(f"network: {exc}") from None
            mac = mac_for(instance)
            gateway = str(mine.vm_gateway.ip)
            prefix = mine.vm_subnet.prefixlen
            if ipaddress.ip_address(address) not in mine.vm_subnet:
                # its own subnet's gateway: the guest keeps what it had; proxy_arp answers it
                own = subnet_of(layout, _mesh_of(layout, address))
                if own is not None:
                    gateway = str(own.vm_gateway.ip)
            log.info("VM network attached", extra={"fields": {
                "instance": instance, "tap": tap, "address": address}})
            return Attachment((Nic(tap, mac),), address, prefix, gateway, gateway,
                              hostname_for(str(inst.get("name") or instance[:12])), mac)

    async def release(self, instance: str) -> None:
        """Frees the instance's tap and address; nothing to do when it holds none."""
        async with self._lock:
            await self._load()
            held = self._held.pop(instance, None)
            tap_gone = await links.delete_link(self.host, tap_name(instance))
            if held is None and not tap_gone:
                return
            await self._save()
            found = await self.where()
            if held is not None:
                address = str(held["address"])
                if found is None or ipaddress.ip_address(address) not in found[1].vm_subnet:
                    await links.delete_route(self.host, f"{address}/32")
            if found is not None:
                await self._apply_rules(*found)
            log.info("VM network released", extra={"fields": {"instance": instance}})

    # the host -------------------------------------------------------------------------------
    async def _ensure_bridge(self, mine: NodeAddresses) -> None:
        """The bridge with (only) this node's gateway address, proxy_arp, forwarding."""
        try:
            wanted = str(mine.vm_gateway)
            await links.ensure_bridge(self.host, self.bridge, wanted, BRIDGE_MAC)
            for old in await links.addresses(self.host, self.bridge):
                if old != wanted and ipaddress.ip_interface(old).version == 4:
                    await links.remove_address(self.host, self.bridge, old)  # a lost slot's
            await self.host.write_sysctl(f"net.ipv4.conf.{self.bridge}.proxy_arp", "1")
            await links.enable_forwarding(self.host)
        except Exception as exc:
            raise VmmError(f"network: cannot set up bridge {self.bridge}: {exc}") from None

    async def _apply_rules(self, layout: MeshLayout, mine: NodeAddresses) -> None:
        out = egress.egress_of([(str(h["address"]), bool(h["egress"]))
                                for h in self._held.values()])
        pool = ipaddress.IPv4Network((layout.network.network_address, layout.vm_prefix))
        await egress.apply(self.host, egress.Rules(self.bridge, str(layout.network),
                                                   str(mine.vm_gateway.ip), out, str(pool)))

    async def _wait_subnet(self) -> tuple[MeshLayout, NodeAddresses]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SUBNET_WAIT_S
        while True:
            found = await self.where()
            if found is not None:
                return found
            if loop.time() > deadline:
                raise VmmError("network: this node holds no mesh address yet, so it has no VM "
                               "subnet (is it a member of a network with a CIDR?)")
            await asyncio.sleep(SUBNET_POLL_S)

    # what this node handed out --------------------------------------------------------------
    async def _load(self) -> None:
        if self._loaded:
            return

        def read() -> dict[str, dict[str, Any]]:
            try:
                data = json.loads(self.state_file.read_text())
            except (OSError, ValueError):
                return {}
            return {str(k): v for k, v in data.items()
                    if isinstance(v, dict) and isinstance(v.get("address"), str)}

        self._held = await asyncio.to_thread(read)
        self._loaded = True

    async def _save(self) -> None:
        text = json.dumps(self._held, sort_keys=True)

        def write() -> None:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, self.state_file)

        await asyncio.to_thread(write)


def _mesh_of(layout: MeshLayout, address: str) -> str:
    """The mesh address of the node whose VM subnet holds `address` (slot k: pool address k)."""
    block = 2 ** (32 - layout.vm_prefix)
    slot = (int(ipaddress.ip_address(address)) - int(layout.network.network_address)) // block
    return str(ipaddress.IPv4Address(int(layout.network.network_address) + slot))


async def route_moved(host: NetHost, interface: str, mine: NodeAddresses | None,
                      moved_32s: dict[str, list[str]], me: str, current: set[str]) -> set[str]:
    """An instance of our VM subnet that runs on another node (it migrated): its /32 goes out
    of the mesh interface, not onto our bridge, where the subnet's route points. (The node
    running it routes the /32 to its own bridge: VmNetwork.attach.) Returns the routes now in
    place; `current`: the ones a previous call put there."""
    wanted: set[str] = set()
    if mine is not None:
        wanted = {a for node, found in moved_32s.items() if node != me for a in found
                  if ipaddress.IPv4Network(a).subnet_of(mine.vm_subnet)}
    for route in sorted(wanted - current):
        await links.add_route(host, route, interface)
    for route in sorted(current - wanted):
        await links.delete_route(host, route)
    return wanted


def store_where(store: StateStore, me: str, vm_prefix: int) -> Where:
    async def where() -> tuple[MeshLayout, NodeAddresses] | None:
        network = await store.view("network")
        layout = layout_of(network[0].get("cidr") if network else None, vm_prefix)
        if layout is None:
            return None
        mine = next((n for n in await store.view("nodes") if n["key"] == me), None)
        found = subnet_of(layout, (mine or {}).get("address"))
        return (layout, found) if found is not None else None

    return where


def for_node(service: NodeService, store: StateStore, me: str,
             run_dir: Path) -> VmNetwork | None:
    """The VM network of a node: only with the mesh (it routes the VM subnets between hosts),
    as root, with /dev/net/tun. Otherwise None: VMs boot without a network, as before."""
    if not service.settings.mesh.enabled:
        return None
    if os.geteuid() != 0 or not Path("/dev/net/tun").exists():
        log.warning("VM network disabled: needs root and /dev/net/tun")
        return None

    async def instances() -> list[dict[str, Any]]:
        return await store.view("instances")

    return VmNetwork(store_where(store, me, service.settings.mesh.vm_prefix), instances,
                     run_dir / STATE_FILE)
