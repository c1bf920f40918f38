"""Links, addresses, routes and forwarding through rtnetlink (pyroute2), on a NetHost. Every
function is idempotent: applying the same state twice changes nothing the second time."""

from __future__ import annotations

import asyncio
import fcntl
import ipaddress
import os
import struct

from pyroute2.netlink.exceptions import NetlinkError

from formation.node.net.host import NetHost, call_in_netns
from formation.node.net.peers import WireGuardError

TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
EEXIST = 17
ENODEV = 19
EADDRNOTAVAIL = 99


async def link_index(host: NetHost, name: str) -> int | None:
    async with host.iproute() as ipr:
        found = await ipr.link_lookup(ifname=name)
    return found[0] if found else None


async def require_index(host: NetHost, name: str) -> int:
    index = await link_index(host, name)
    if index is None:
        raise WireGuardError(f"network interface {name} does not exist")
    return index


async def set_up(host: NetHost, name: str, master: str | None = None) -> None:
    index = await require_index(host, name)
    async with host.iproute() as ipr:
        if master is not None:
            master_index = await require_index(host, master)
            await ipr.link("set", index=index, master=master_index)
        await ipr.link("set", index=index, state="up")


async def delete_link(host: NetHost, name: str) -> bool:
    """Removes the link; False when there was none."""
    index = await link_index(host, name)
    if index is None:
        return False
    async with host.iproute() as ipr:
        try:
            await ipr.link("del", index=index)
        except NetlinkError as exc:
            if exc.code != ENODEV:
                raise
    return True


async def add_address(host: NetHost, name: str, cidr: str) -> None:
    """`10.1.0.5/16` on `name`; the kernel adds the connected route for the prefix."""
    await _change_address(host, name, cidr, "add", EEXIST, f"cannot add {cidr} to {name}")


async def remove_address(host: NetHost, name: str, cidr: str) -> None:
    """Takes `cidr` off `name`; nothing to do when it is not there."""
    await _change_address(host, name, cidr, "del", EADDRNOTAVAIL,
                          f"cannot remove {cidr} from {name}")


async def _change_address(host: NetHost, name: str, cidr: str, command: str,
                          already_done: int, failure: str) -> None:
    """One address change; the errno that means "already so" is not an error."""
    iface = ipaddress.ip_interface(cidr)
    index = await require_index(host, name)
    async with host.iproute() as ipr:
        try:
            await ipr.addr(command, index=index, address=str(iface.ip),
                           prefixlen=iface.network.prefixlen)
        except NetlinkError as exc:
            if exc.code != already_done:
                raise WireGuardError(f"{failure}: {exc}") from None


async def addresses(host: NetHost, name: str) -> list[str]:
    index = await require_index(host, name)
    async with host.iproute() as ipr:
        found = [m async for m in await ipr.addr("dump", index=index)]
    return [f"{m.get('IFA_ADDRESS')}/{m['prefixlen']}" for m in found]


async def add_route(host: NetHost, destination: str, device: str) -> None:
    """A route for `destination` out of `device` (replaced if one exists)."""
    net = ipaddress.ip_network(destination, strict=False)
    index = await require_index(host, device)
    async with host.iproute() as ipr:
        await ipr.route("replace", dst=str(net), oif=index)


async def delete_route(host: NetHost, destination: str) -> None:
    net = ipaddress.ip_network(destination, strict=False)
    async with host.iproute() as ipr:
        try:
            await ipr.route("del", dst=str(net))
        except NetlinkError as exc:
            if exc.code not in (3, ENODEV):  # ESRCH: no such route
                raise


async def ensure_bridge(host: NetHost, name: str, cidr: str | None = None,
                        mac: str | None = None) -> None:
    """The per-node VM bridge, up, with the gateway address of the node's VM subnet. `mac`
    pins its address (else the kernel takes the lowest of its ports', which changes as taps
    come and go)."""
    if await link_index(host, name) is None:
        async with host.iproute() as ipr:
            try:
                await ipr.link("add", ifname=name, kind="bridge")
            except NetlinkError as exc:
                if exc.code != EEXIST:
                    raise
    if mac is not None:
        index = await require_index(host, name)
        async with host.iproute() as ipr:
            await ipr.link("set", index=index, address=mac)
    if cidr:
        await add_address(host, name, cidr)
    await set_up(host, name)


def _make_tap(name: str) -> None:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
        fcntl.ioctl(fd, TUNSETPERSIST, 1)
    finally:
        os.close(fd)


async def ensure_tap(host: NetHost, name: str, bridge: str) -> None:
    """A persistent tap for one VM, enslaved to the VM bridge and up. The VMM opens it later."""
    if len(name) > 15:
        raise WireGuardError(f"interface name {name!r} is longer than 15 characters")
    if await link_index(host, name) is None:
        await asyncio.to_thread(call_in_netns, host.netns, lambda: _make_tap(name))
    await set_up(host, name, master=bridge)


async def enable_forwarding(host: NetHost) -> None:
    """VM traffic crosses from the bridge to the mesh interface: the host must route."""
    await host.write_sysctl("net.ipv4.ip_forward", "1")
