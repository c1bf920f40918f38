"""The host's network interfaces, read with one rtnetlink dump of links and one of IPv4
addresses (pyroute2, in a thread: the calls block). Loopback and the node's own mesh link are
marked, so nobody picks them as the underlay."""

from __future__ import annotations

import socket
from typing import Literal

from formation.api.host_models import HostInterface
from formation.node.net.host import NetHost, call_in_netns

IFF_UP = 0x1
IFF_LOOPBACK = 0x8
FORMATION_KINDS = ("wireguard",)


def _kind(link) -> str:
    if link["flags"] & IFF_LOOPBACK:
        return "loopback"
    kind = link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
    return str(kind) if kind else "ether"


def _role(name: str, kind: str, flags: int,
          mesh_interface: str) -> Literal["candidate", "loopback", "formation"]:
    if flags & IFF_LOOPBACK:
        return "loopback"
    if name == mesh_interface or kind in FORMATION_KINDS:
        return "formation"
    return "candidate"


def _dump() -> tuple[list, list]:
    from pyroute2 import IPRoute  # imported late: slow to import, only needed on request

    with IPRoute() as ipr:
        return list(ipr.get_links()), list(ipr.get_addr(family=socket.AF_INET))


def list_interfaces(host: NetHost, mesh_interface: str) -> list[HostInterface]:
    """Blocking: call through asyncio.to_thread."""
    links, addrs = call_in_netns(host.netns, _dump)
    by_index: dict[int, list[str]] = {}
    for addr in addrs:
        text = addr.get_attr("IFA_ADDRESS")
        if text:
            by_index.setdefault(addr["index"], []).append(f"{text}/{addr['prefixlen']}")
    found = []
    for link in sorted(links, key=lambda m: m["index"]):
        name, flags, kind = link.get_attr("IFLA_IFNAME"), link["flags"], _kind(link)
        mac = link.get_attr("IFLA_ADDRESS")
        found.append(HostInterface(
            name=name, mac=mac if mac and not flags & IFF_LOOPBACK else None,
            up=bool(flags & IFF_UP), state=str(link.get_attr("IFLA_OPERSTATE") or "unknown")
            .lower(), kind=kind, addresses=by_index.get(link["index"], []),
            role=_role(name, kind, flags, mesh_interface)))
    return found
