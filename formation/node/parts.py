"""The parts of a standalone node and who uses which: the one place they are built and wired.

Each part is given, in its constructor, the other parts (or the pieces of them) it uses, so this
file is the node's dependency graph; no part looks another up. The service starts the parts in
the order of the fields of `Parts`, after the identity exists and before the API is served
(component.py), and stops them in reverse: a part comes after every part it is given. A new part
(the VM reconciler, pack, the proxy) is a field here, built in `build_parts` from what it uses."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from formation.config.settings import NodeSettings
from formation.discovery.component import DiscoveryComponent
from formation.discovery.join import JoinComponent
from formation.node.capabilities import host
from formation.node.capabilities.offer import offered_with_devices
from formation.node.component import Component
from formation.node.console_support import ConsoleSupport
from formation.node.console_support.ssh_access import SshAccess
from formation.node.dns.component import DnsComponent
from formation.node.edge.component import EdgeComponent
from formation.node.host_network.component import HostNetwork
from formation.node.net.component import MeshComponent
from formation.node.net.host import LOCAL_HOST
from formation.node.net.routes import MeshRoutes
from formation.node.net.underlay_watch import UnderlayWatch, follows_underlay
from formation.node.p2p.component import P2PComponent
from formation.node.pack.component import PackComponent
from formation.node.state.component import StateComponent
from formation.node.state.wire import OpWire
from formation.node.vmm.component import VmmComponent
from formation.node.vmm.images.component import ImagesComponent


@dataclass
class Parts:
    """One typed field per part, in start order."""

    underlay: UnderlayWatch  # the host's underlay addresses, read once a part asks
    state: StateComponent  # the replicated state store and its replication
    discovery: DiscoveryComponent  # the peer table: mDNS, bootstrap list
    p2p: P2PComponent  # gossip, heartbeats, membership
    join: JoinComponent  # invites, the join handshake, this node's record
    mesh: MeshComponent  # WireGuard (starts after ready)
    dns: DnsComponent  # `.fog` names (starts after ready)
    console: ConsoleSupport  # what the console shows of the host
    ssh: SshAccess  # who gets the console over SSH
    host_network: HostNetwork  # the host's interfaces and underlay settings
    images: ImagesComponent  # workload images: the blob store, its API, fetching from peers
    vmm: VmmComponent  # the VMs placed here: backend, reconciler, VM API (starts after ready)
    edge: EdgeComponent  # the proxy on edge nodes (starts after ready)
    pack: PackComponent  # workload builds from Formfiles, one at a time, into the image store

    def in_start_order(self) -> list[Component]:
        return [getattr(self, f.name) for f in fields(self)]


def build_parts(settings: NodeSettings) -> Parts:
    underlay = UnderlayWatch(LOCAL_HOST)
    # discovery, gossip and joining follow the host's addresses only where they are what is
    # advertised; the mesh always does (its `wg_endpoints`)
    followed = underlay if follows_underlay(settings) else None
    routes = MeshRoutes()  # written by the mesh; read by the parts that send to peers
    state = StateComponent()
    discovery = DiscoveryComponent(followed, state.network_hex)
    p2p = P2PComponent(discovery, routes, followed)
    images = ImagesComponent(state, routes.api_address)
    vmm = VmmComponent(state, p2p, images)
    return Parts(
        underlay=underlay,
        state=state,
        discovery=discovery,
        p2p=p2p,
        join=JoinComponent(discovery, state, OpWire(), routes.api_address, _offer, followed),
        mesh=MeshComponent(LOCAL_HOST, state, routes, underlay),
        dns=DnsComponent(LOCAL_HOST, state),
        console=ConsoleSupport(),
        ssh=SshAccess(state),
        host_network=HostNetwork(LOCAL_HOST),
        images=images,
        vmm=vmm,
        # the members the vmm part saw dead: no longer chosen to issue shared certificates
        edge=EdgeComponent(LOCAL_HOST, state=state, dead=vmm.dead),
        pack=PackComponent(state, images),
    )


def _offer(settings: NodeSettings) -> dict[str, Any]:
    """What this node offers the network (its record's `resources`) under `settings`, read
    from the host now: blocking, the join part calls it in a thread."""
    return offered_with_devices(settings.resources, host.resources(settings.data_dir))
