"""The discovery part of the node: owns the peer table, runs mDNS and the bootstrap list, and
serves what it found in the API and on the event stream (topic `discovery`).

Where the API listens on every address (`0.0.0.0:PORT`, the appliance's setting) what is
advertised (the mDNS record, and the address the join part puts in the node record's
`endpoints`) is the host's underlay addresses. They are followed (the `Underlay` node/parts.py
gives it then: node/net/underlay_watch.py): after a change the mDNS service is registered again
with the new addresses."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from formation import __version__
from formation.addresses import every_address
from formation.api.caller import Caller
from formation.api.discovery_models import UNENROLLED, DiscoveredPeers, Hello
from formation.api.models import Empty, HealthCheck
from formation.discovery.bootstrap import Bootstrapper
from formation.discovery.needs import NodeRuntime, Underlay, identity_of, started
from formation.discovery.peers import PeerRecord, PeerTable

if TYPE_CHECKING:
    from formation.config.settings import NodeSettings
    from formation.discovery.mdns import MdnsDiscovery

log = logging.getLogger(__name__)

BIND_WAIT_S = 30.0


def mdns_addresses(settings: NodeSettings,
                   host_addresses: Sequence[str] = ()) -> tuple[list[str], str]:
    """Where to advertise: the configured addresses, else where the API listens (for every
    address: the host's underlay `host_addresses`). A loopback API cannot be reached from
    another host, so there is nothing to advertise."""
    if not settings.discovery.mdns:
        return [], "off (discovery.mdns: false)"
    if settings.discovery.addresses:
        return list(settings.discovery.addresses), ""
    if not settings.api.listen:
        return [], "off: no api.listen, so no other host could reach this node"
    host = settings.api.listen.rpartition(":")[0].strip("[]")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return [], f"off: api.listen host {host!r} is not an IP; set discovery.addresses"
    if ip.version != 4:
        return [], "off: mDNS here is IPv4 only; set discovery.addresses"
    if ip.is_loopback:
        return [], "off: api.listen is on loopback"
    if ip.is_unspecified:
        found = list(host_addresses)
        return (found, "") if found else ([], "off: no IPv4 interface address")
    return [host], ""


class DiscoveryComponent:
    name = "discovery"

    def __init__(self, underlay: Underlay | None = None,
                 network_id: Callable[[], str | None] = lambda: None) -> None:
        """`underlay`: the host's addresses, to advertise and follow where the API listens on
        every address (none: what is configured, or where the API listens, is advertised).
        `network_id()`: the network this node is in (hex; None before founding or joining),
        told to others in the mDNS record and the hello."""
        self.service: NodeRuntime | None = None
        self.peers: PeerTable | None = None
        self.network_id = network_id
        self.api_port = 0
        self.advertised_address = ""  # host:port other hosts reach the API at
        self.bound_host = ""
        self.mdns_status = "starting"
        self._mdns: MdnsDiscovery | None = None
        self._bootstrap: Bootstrapper | None = None
        self._underlay = underlay
        self._mdns_lock = asyncio.Lock()  # one re-registration at a time
        self._enrolment_watch: asyncio.Task | None = None

    @property
    def runtime(self) -> NodeRuntime:
        """The node service, once start() ran (a RuntimeError before)."""
        return started(self.service, self.name)

    @property
    def peer_table(self) -> PeerTable:
        """The peer table, made by start() (a RuntimeError before; `peers` is None then)."""
        if self.peers is None:
            raise RuntimeError("the discovery part's peer table is used before it started")
        return self.peers

    # the peer table and what others see of this node -------------------------------------
    def network(self) -> str:
        return self.network_id() or UNENROLLED

    def hello(self) -> Hello:
        svc = self.runtime
        identity = identity_of(svc)
        return Hello(node_id=identity.node_id, name=svc.settings.name,
                     public_key=identity.public_key_hex, network=self.network(),
                     api_port=self.api_port, version=__version__)

    def _tell(self, kind: str, record: PeerRecord) -> None:
        trusted = self.runtime.is_known_key(record.public_key)
        model = self.peer_table.to_model(record, self.network(), trusted)
        self.runtime.publish("discovery", kind, model.model_dump(mode="json"))

    # lifecycle ----------------------------------------------------------------------------
    async def start(self, service: NodeRuntime) -> None:
        self.service = service
        self.peers = PeerTable(identity_of(service).node_id)
        self.peers.listen(self._tell)
        service.spawn(self._after_bind())

    async def _after_bind(self) -> None:
        """mDNS and bootstrap need the bound API port, known only once the API serves."""
        svc = self.service
        assert svc is not None and svc.identity is not None and self.peers is not None
        tcp = await _bound_tcp(svc)
        if tcp is None:
            self.mdns_status = "off: the node API is not served on TCP"
            return
        host, _, port = tcp.rpartition(":")
        self.api_port, self.bound_host = int(port), host
        host_addresses: list[str] = []
        if self._underlay is not None:
            host_addresses = await self._underlay.addresses()
        await self._advertise(host_addresses)
        if self._underlay is not None:  # a change since that reading is still seen
            self._underlay.subscribe(self._underlay_changed)
        if svc.settings.bootstrap:
            d = svc.settings.discovery
            self._bootstrap = Bootstrapper(
                list(svc.settings.bootstrap), svc.identity, self.peers,
                delay_s=d.bootstrap_delay_s, backoff_max_s=d.bootstrap_backoff_max_s,
                mdns_found=self._mdns_found)
            await self._bootstrap.run()

    async def _advertise(self, host_addresses: list[str]) -> None:
        """(Re)starts mDNS on the addresses to advertise, and sets the API address advertised.
        zeroconf's sockets are bound to the addresses' interfaces, so a new address takes a
        new zeroconf instance rather than an updated record."""
        async with self._mdns_lock:
            await self._advertise_now(host_addresses)

    async def _advertise_now(self, host_addresses: list[str]) -> None:
        svc = self.service
        assert svc is not None and self.peers is not None
        addresses, why_not = mdns_addresses(svc.settings, host_addresses)
        host = (addresses or host_addresses or [self.bound_host])[0]
        # an API on every address of a host that has none yet: nothing to advertise until one
        self.advertised_address = "" if every_address(host) else f"{host}:{self.api_port}"
        if self._mdns is not None:
            with contextlib.suppress(Exception):  # its address may be gone: no goodbye then
                await asyncio.wait_for(self._mdns.stop(), 5.0)
            self._mdns = None
        if not addresses:
            self.mdns_status = why_not
            return
        # zeroconf is imported only here: a node not yet in a network serves no TCP.
        from formation.discovery.mdns import MdnsDiscovery

        self._mdns = MdnsDiscovery(addresses, self.hello, self.peers)
        self.mdns_status = "on " + ", ".join(addresses)  # browsing starts at once
        try:
            await self._mdns.start()
        except OSError as exc:
            self.mdns_status = f"failed: {exc}"
            self._mdns = None
            log.error("mDNS failed to start", extra={"fields": {"error": str(exc)}})
        else:
            if self._enrolment_watch is None:
                self._enrolment_watch = svc.spawn(self._readvertise_on_enrolment())

    async def _underlay_changed(self, old: list[str], new: list[str]) -> None:
        """The host's addresses changed: advertise the new ones. With none left (an address
        being replaced) the old record stays until one comes."""
        assert self.service is not None
        if not new:
            return
        before = self.advertised_address
        await self._advertise(new)
        log.info("mDNS record registered again for the new underlay addresses",
                 extra={"fields": {"addresses": ",".join(new), "api": self.advertised_address,
                                   "mdns": self.mdns_status}})
        self.service.publish("discovery", "readvertised", {
            "addresses": new, "api_from": before, "api": self.advertised_address,
            "mdns": self.mdns_status})

    async def _readvertise_on_enrolment(self) -> None:
        """The network id in the TXT record changes when the state store gets its genesis
        (founded here or joined); watch the store's events for that moment."""
        assert self.service is not None
        events = self.service.bus.subscribe(topic="state")
        await self._readvertise_if_changed()  # what changed before we listened
        async for _event in events:
            await self._readvertise_if_changed()

    async def _readvertise_if_changed(self) -> None:
        async with self._mdns_lock:
            mdns = self._mdns
            if mdns is not None and await mdns.readvertise_if_changed():
                log.info("mDNS record updated",
                         extra={"fields": {"network": mdns.advertised_network}})

    def _mdns_found(self) -> bool:
        return any("mdns" in r.sources for r in self.peer_table.records())

    async def stop(self) -> None:
        if self._underlay is not None:
            self._underlay.unsubscribe(self._underlay_changed)
        if self._mdns is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._mdns.stop(), 5.0)

    def api_handlers(self) -> object:
        return DiscoveryHandlers(self)

    def health(self) -> list[HealthCheck]:
        count = len(self.peers.records()) if self.peers else 0
        failed = self.mdns_status.startswith("failed")
        return [HealthCheck(name="discovery", ok=not failed,
                            detail=f"mDNS {self.mdns_status}; {count} hosts known")]


async def _bound_tcp(service: NodeRuntime) -> str | None:
    if not service.settings.api.listen:
        return None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BIND_WAIT_S
    while loop.time() < deadline:
        for address in service.listen_addresses():
            if address.startswith("tcp:"):
                return address.removeprefix("tcp:")
        await asyncio.sleep(0.02)
    return None


class DiscoveryHandlers:
    def __init__(self, part: DiscoveryComponent) -> None:
        self.part = part

    async def discovery_hello(self, body: Empty, caller: Caller) -> Hello:
        return self.part.hello()

    async def discovery_peers(self, body: Empty, caller: Caller) -> DiscoveredPeers:
        part = self.part
        svc = part.service
        assert svc is not None and part.peers is not None
        network = part.network()
        peers = [part.peers.to_model(r, network, svc.is_known_key(r.public_key))
                 for r in part.peers.records()]
        return DiscoveredPeers(network=network, mdns=part.mdns_status, peers=peers)
