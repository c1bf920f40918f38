"""The p2p part of the node: gossip over the node API, heartbeats on the `heartbeat` topic, and
the membership table they feed. Peers come from discovery's table; only peers whose keys this node
trusts are gossip targets (the state store will widen that to the network's members). A peer the
mesh reaches is sent to at its mesh address (formation/node/net/routes.py)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from formation.api.caller import Caller
from formation.api.errors import PayloadTooLarge, Unavailable
from formation.api.models import Empty, HealthCheck
from formation.api.p2p_models import (
    Envelope,
    GossipAck,
    GossipBatch,
    GossipStatus,
    Members,
    PublishRequest,
    PublishResult,
)
from formation.identity import node_id_for
from formation.node.net.routes import MeshRoutes
from formation.node.net.underlay_watch import UnderlayWatch
from formation.node.p2p.envelope import MAX_SIGNED_BYTES, TooLarge, origin_id
from formation.node.p2p.gossip import ALL, Gossip, InboxFull, PeerTarget
from formation.node.p2p.membership import DEAD, MembershipTable, Transition
from formation.node.p2p.rtt import RoundTrips

if TYPE_CHECKING:
    from formation.discovery.component import DiscoveryComponent
    from formation.identity import NodeIdentity
    from formation.node.service import NodeService

HEARTBEAT = "heartbeat"
STATE = "state"
MAX_SHARED_PEERS = 64
PEERS_EVERY = 5  # peer exchange rides on every 5th heartbeat: at N=20 a full list each second
# to each peer would be most of the heartbeat traffic


class P2PComponent:
    name = "p2p"

    def __init__(self, discovery: DiscoveryComponent, routes: MeshRoutes,
                 underlay: UnderlayWatch | None = None) -> None:
        """`discovery`: whose peer table gossip sends to and heartbeats add to. `routes`: the
        mesh's (a peer it reaches is sent to at its mesh address; membership shows the
        handshake ages). `underlay`: given where the host's addresses are followed; gossip
        then reconnects when they change."""
        self.discovery = discovery
        self.routes = routes
        self.service: NodeService | None = None
        self.gossip: Gossip | None = None
        self.members: MembershipTable | None = None
        self.round_trips: RoundTrips | None = None
        self._seq = 0
        self._underlay = underlay

    @property
    def identity(self) -> NodeIdentity:
        """This node's identity, once start() ran (a RuntimeError before)."""
        identity = self.service.identity if self.service is not None else None
        if identity is None:
            raise RuntimeError("the p2p part is used before it started")
        return identity

    async def start(self, service: NodeService) -> None:
        self.service = service
        s = service.settings
        self.gossip = Gossip(self.identity, s.gossip, service.is_known_key, self._targets,
                             on_delivered=self._delivered)
        self.members = MembershipTable(s.membership.suspect_after_s, s.membership.dead_after_s)
        self.round_trips = RoundTrips(fresh_s=s.membership.suspect_after_s)
        self.members.handshake_age = self._handshake_age
        self.gossip.subscribe(HEARTBEAT, self._on_heartbeat)
        await self.gossip.start()
        service.spawn(self._beat())
        service.spawn(self._age())
        if self._underlay is not None:
            self._underlay.subscribe(self._underlay_changed)

    async def _underlay_changed(self, old: list[str], new: list[str]) -> None:
        if self.gossip is not None:
            await self.gossip.reconnect()

    async def stop(self) -> None:
        if self._underlay is not None:
            self._underlay.unsubscribe(self._underlay_changed)
        if self.gossip is not None:
            await self.gossip.stop()

    # peers and heartbeats -----------------------------------------------------------------
    def _targets(self) -> list[PeerTarget]:
        svc, peers, members = self.service, self.discovery.peers, self.members
        if svc is None or peers is None or members is None:
            return []
        found = []
        for record in peers.records():
            if record.address and svc.is_known_key(record.public_key):
                member = members.get(record.node_id)
                address = self.routes.api_address(record.public_key, record.address)
                found.append(PeerTarget(record.node_id, address,
                                        alive=member is None or member.state != DEAD))
        return found

    def _handshake_age(self, node_id: str) -> float | None:
        return self.routes.ages_by_node_id.get(node_id)

    def _shared_peers(self) -> list[dict[str, str]]:
        """Peer exchange: each heartbeat names a few known hosts, so a node found by one peer is
        soon known to all."""
        records = self.discovery.peers.records() if self.discovery.peers else []
        return [{"id": r.node_id, "pk": r.public_key, "addr": r.address, "name": r.name}
                for r in records[:MAX_SHARED_PEERS]]

    async def _beat(self) -> None:
        svc, round_trips = self.service, self.round_trips
        assert svc is not None and self.gossip is not None and round_trips is not None
        while True:
            if self.discovery.advertised_address:
                self._seq += 1
                shared = self._shared_peers() if self._seq % PEERS_EVERY == 1 else []
                payload = {"name": svc.settings.name, "address": self.discovery.advertised_address,
                           "seq": self._seq, "peers": shared, **round_trips.stamp()}
                await self.gossip.publish(HEARTBEAT, payload, fanout=ALL, hops=0)
            await asyncio.sleep(svc.settings.membership.heartbeat_s)

    def _on_heartbeat(self, envelope: Envelope) -> None:
        assert self.members is not None
        peers = self.discovery.peers
        p = envelope.payload
        name, address = p.get("name"), p.get("address")
        if not isinstance(name, str) or not isinstance(address, str) or ":" not in address:
            return
        node_id = origin_id(envelope)
        if peers is not None:
            peers.observe("gossip", node_id, envelope.origin_key, address, name=name)
            for entry in p.get("peers", [])[:MAX_SHARED_PEERS]:
                self._learn(entry)
        transition = self.members.heard(node_id, name, address)
        record = self.members.get(node_id)  # heard() keeps one
        if self.round_trips is not None and record is not None:
            record.rtt_ms = self.round_trips.heard(node_id, self.identity.node_id, p)
        if transition is not None:
            self._announce(transition)

    def _learn(self, entry: Any) -> None:
        peers = self.discovery.peers
        if not isinstance(entry, dict) or peers is None:
            return
        ident, key, address = entry.get("id"), entry.get("pk"), entry.get("addr")
        if not (isinstance(ident, str) and isinstance(key, str) and isinstance(address, str)):
            return
        with contextlib.suppress(ValueError):
            if peers.get(ident) is None and node_id_for(bytes.fromhex(key)) == ident:
                name = entry.get("name") if isinstance(entry.get("name"), str) else ""
                peers.observe("gossip", ident, key, address, name=name)

    async def _age(self) -> None:
        svc = self.service
        assert svc is not None and self.members is not None
        while True:
            await asyncio.sleep(svc.settings.membership.heartbeat_s / 10)
            for transition in self.members.tick():
                self._announce(transition)

    def _announce(self, transition: Transition) -> None:
        assert self.service is not None and self.members is not None
        data = self.members.to_model(transition.record).model_dump(mode="json")
        data["previous"] = transition.previous
        self.service.publish("membership", transition.kind, data)

    def _delivered(self, envelope: Envelope) -> None:
        if envelope.topic != HEARTBEAT and self.service is not None:
            self.service.publish("gossip", "delivered", {
                "id": envelope.id, "topic": envelope.topic, "origin": origin_id(envelope),
                "hops_left": envelope.hops})

    # API ------------------------------------------------------------------------------------
    def api_handlers(self) -> object:
        return P2PHandlers(self)

    def health(self) -> list[HealthCheck]:
        if self.members is None or self.gossip is None:
            return [HealthCheck(name="p2p", ok=False, detail="not started")]
        states = [r.state for r in self.members.records()]
        counts = ", ".join(f"{states.count(s)} {s}" for s in ("alive", "suspect", "dead"))
        return [HealthCheck(name="p2p", ok=True,
                            detail=f"members: {counts}; gossip delivered {self.gossip.delivered}")]


class P2PHandlers:
    def __init__(self, part: P2PComponent) -> None:
        self.part = part

    async def gossip_push(self, body: GossipBatch, caller: Caller) -> GossipAck:
        assert self.part.gossip is not None
        sender = node_id_for(bytes.fromhex(caller.key)) if caller.key else None
        try:
            return self.part.gossip.accept_batch(body.envelopes, sender)
        except InboxFull:
            raise Unavailable("Inbox full: back off and retry the batch") from None

    async def gossip_publish(self, body: PublishRequest, caller: Caller) -> PublishResult:
        assert self.part.gossip is not None
        try:
            envelope, targets = await self.part.gossip.publish(body.topic, body.payload)
        except TooLarge:
            raise PayloadTooLarge(f"payload: a signed message is at most {MAX_SIGNED_BYTES} "
                                  "bytes") from None
        return PublishResult(id=envelope.id, targets=targets)

    async def gossip_status(self, body: Empty, caller: Caller) -> GossipStatus:
        assert self.part.gossip is not None
        return self.part.gossip.status()

    async def members(self, body: Empty, caller: Caller) -> Members:
        part = self.part
        assert part.members is not None and part.service is not None
        m = part.service.settings.membership
        return Members(self_id=part.identity.node_id,
                       heartbeat_s=m.heartbeat_s, suspect_after_s=m.suspect_after_s,
                       dead_after_s=m.dead_after_s,
                       members=[part.members.to_model(r) for r in part.members.records()])
