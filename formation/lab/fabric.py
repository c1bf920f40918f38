"""The lab's network, with pyroute2: a hub namespace with two bridges, a namespace per host, a
veth pair from each host to the hub. Blocking netlink calls: run these in a thread."""

from __future__ import annotations

from pyroute2 import NetNS, netns

from formation.lab.names import NETNS_DIR, PREFIXLEN, LabNames


def lab_namespaces(names: LabNames) -> list[str]:
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(names.netns_prefix))


def create_hub(names: LabNames) -> None:
    netns.create(names.hub)
    with NetNS(names.hub) as ns:
        for bridge in (names.bridge, names.cut_bridge):
            # No multicast snooping: mDNS must reach every port without IGMP joins being seen.
            ns.link("add", ifname=bridge, kind="bridge", br_mcast_snooping=0)
            ns.link("set", index=ns.link_lookup(ifname=bridge)[0], state="up")


def add_host(names: LabNames, index: int) -> None:
    host_ns = names.host_netns(index)
    netns.create(host_ns)
    with NetNS(names.hub) as hub:
        hub.link("add", ifname=names.veth(index), kind="veth",
                 peer={"ifname": names.veth_peer(index)})
        hub.link("set", index=hub.link_lookup(ifname=names.veth_peer(index))[0],
                 net_ns_fd=host_ns)
        port = hub.link_lookup(ifname=names.veth(index))[0]
        hub.link("set", index=port, master=hub.link_lookup(ifname=names.bridge)[0], state="up")
    with NetNS(host_ns) as host:
        link = host.link_lookup(ifname=names.veth_peer(index))[0]
        host.link("set", index=link, ifname="eth0")
        host.addr("add", index=link, address=names.address(index), prefixlen=PREFIXLEN)
        host.link("set", index=link, state="up")
        host.link("set", index=host.link_lookup(ifname="lo")[0], state="up")


def set_partition(names: LabNames, count: int, cut: set[int]) -> None:
    """Hosts in `cut` hang off the second bridge; all others off the first."""
    with NetNS(names.hub) as hub:
        bridges = {b: hub.link_lookup(ifname=b)[0] for b in (names.bridge, names.cut_bridge)}
        for index in range(1, count + 1):
            found = hub.link_lookup(ifname=names.veth(index))
            if found:
                target = names.cut_bridge if index in cut else names.bridge
                hub.link("set", index=found[0], master=bridges[target])


def remove_namespaces(names: LabNames) -> list[str]:
    """Deleting a namespace deletes its links; the hub's bridges and veths go with it."""
    removed = []
    for name in lab_namespaces(names):
        netns.remove(name)
        removed.append(name)
    return removed
