"""Founding's sequel: inviting and joining, as a part of the node.

- Admin side (`admit.py`): makes invite tokens, answers the join handshake of token holders and
  keeps the list of hosts that asked to join without one, until an admin approves or rejects.
- Joiner side (`joiner.py`): runs the handshake with a token, or asks and waits.
- Both sides: once a member, every other member of the replicated state is a replication peer
  (found by discovery or by the `node.record` ops members write about themselves), and this node
  writes its own `node.record` (name, API endpoints) so the others can reach it, and writes it
  again when the endpoints change (discovery follows the host's underlay addresses).

What it uses of the node (the state store, where a peer's API is reached, what this host offers)
it is given in its constructor: node/parts.py wires it (discovery/needs.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from formation.api import join_models as jm
from formation.api.caller import Caller
from formation.api.models import Empty, HealthCheck
from formation.config.settings import NodeSettings
from formation.discovery.admit import AdmitSide
from formation.discovery.joiner import JoinerSide
from formation.discovery.needs import (
    JoinStore,
    NodeRuntime,
    OpWire,
    StatePart,
    Underlay,
    identity_of,
    started,
)
from formation.discovery.removal import remove_node
from formation.errors import OpError
from formation.identity import NodeIdentity, node_id_for

if TYPE_CHECKING:
    from formation.discovery.component import DiscoveryComponent

log = logging.getLogger(__name__)

WIDEN_EVERY_S = 1.0


class JoinComponent:
    name = "join"

    def __init__(self, discovery: DiscoveryComponent, state: StatePart, wire: OpWire,
                 peer_address: Callable[[str, str], str],
                 offer: Callable[[NodeSettings], dict[str, Any]],
                 underlay: Underlay | None = None) -> None:
        """`peer_address(key, underlay_address)`: where to reach a member's API (at its mesh
        address once the mesh reaches it). `offer(settings)`: the resources this host offers
        under the current settings (the console changes them while the node runs), read from
        the host now (blocking: called in a thread). `underlay`: given where discovery
        follows the host's addresses; replication then reconnects when they change."""
        self.discovery = discovery
        self.state = state
        self.wire = wire
        self.peer_address = peer_address
        self.offer = offer
        self.service: NodeRuntime | None = None
        self.admit = AdmitSide(self)
        self.joiner = JoinerSide(self)
        self._underlay = underlay

    async def start(self, service: NodeRuntime) -> None:
        self.service = service
        self.state.require_store()  # the state part starts before this one
        service.spawn(self._widen())
        if self._underlay is not None:
            self._underlay.subscribe(self._underlay_changed)

    @property
    def store(self) -> JoinStore:
        return self.state.require_store()

    @property
    def runtime(self) -> NodeRuntime:
        """The node service, once start() ran (a RuntimeError before)."""
        return started(self.service, self.name)

    @property
    def identity(self) -> NodeIdentity:
        """This node's identity (the service has it before any part starts)."""
        return identity_of(self.runtime)

    async def stop(self) -> None:
        if self._underlay is not None:
            self._underlay.unsubscribe(self._underlay_changed)

    async def _underlay_changed(self, old: list[str], new: list[str]) -> None:
        """Replication connects anew from the new address; the node record follows within a
        second (`_widen`), once discovery advertises the new address."""
        if self.state.replication is not None:
            await self.state.replication.reconnect()

    # replication with every member ----------------------------------------------------------
    def add_replication_peer(self, address: str, key: str) -> None:
        """Replicate (push and anti-entropy) with a member whose API is at `address` on the
        underlay: at its mesh address once the mesh reaches it (re-pointed when that changes)."""
        me = self.identity.public_key_hex
        if not address or key == me or self.state.replication is None:
            return
        routed = self.peer_address(key, address)
        for coro in self.state.replication.add_peer(routed, key):
            self.runtime.spawn(coro)
            log.info("replicating with a member", extra={"fields": {"address": routed}})

    def advertised_endpoints(self) -> list[str]:
        found = [self.discovery.advertised_address] if self.discovery.advertised_address else []
        for address in self.runtime.listen_addresses():
            tcp = address.removeprefix("tcp:")
            if address.startswith("tcp:") and tcp not in found and not tcp.startswith("0.0.0.0"):
                found.append(tcp)
        return found

    async def _widen(self) -> None:
        while True:
            try:
                await self.widen_once()
            except OpError as exc:
                log.warning("cannot record this node in the state",
                            extra={"fields": {"error": str(exc)}})
            await asyncio.sleep(WIDEN_EVERY_S)

    async def widen_once(self) -> None:
        """Every member known by discovery or by its node record becomes a replication peer
        and a discovery record (so gossip and membership reach it); this node's own record is
        written when missing or stale."""
        store, peers = self.store, self.discovery.peers
        me = self.identity.public_key_hex
        if me not in store.members:
            return
        where: dict[str, str] = {}  # member key -> underlay API address; its own record wins
        if peers is not None:
            for record in peers.records():
                if record.address and store.is_member_key(record.public_key):
                    where[record.public_key] = record.address
        nodes = await store.view("nodes")
        for node in nodes:
            key, endpoints = node["key"], node.get("endpoints") or []
            if key == me or not endpoints:
                continue
            if peers is not None:
                peers.observe("state", node_id_for(bytes.fromhex(key)), key, endpoints[0],
                              name=node.get("name"))
            where[key] = endpoints[0]
        for key, address in where.items():
            self.add_replication_peer(address, key)
        await self._record_self(next((n for n in nodes if n["key"] == me), None))

    async def _record_self(self, current: dict | None) -> None:
        endpoints = self.advertised_endpoints()
        settings = self.runtime.settings
        if not endpoints:
            return
        record = {"name": settings.name, "endpoints": endpoints,
                  "resources": await asyncio.to_thread(self.offer, settings)}
        if current and all(current.get(k) == v for k, v in record.items()):
            return
        if current and current.get("endpoints") and current["endpoints"] != endpoints:
            # the underlay changed (discovery advertises the host's new address)
            log.info("node record: the API endpoints changed", extra={"fields": {
                "from": ",".join(current["endpoints"]), "to": ",".join(endpoints)}})
            self.runtime.publish("join", "endpoints_changed",
                                 {"from": current["endpoints"], "to": endpoints})
        # node.record fields are last-writer-wins one by one: the mesh's own record op
        # (wireguard_key, wg_endpoints) and this one never overwrite each other's fields
        await self.store.append("node.record", record)

    # API ------------------------------------------------------------------------------------
    def api_handlers(self) -> object:
        return JoinHandlers(self)

    def health(self) -> list[HealthCheck]:
        pending = len(self.admit.pending)
        return [HealthCheck(name="join", ok=True, detail=f"{pending} pending join(s)")]


class JoinHandlers:
    """One method per endpoint of `api.join_routes`, split between the two sides."""

    def __init__(self, part: JoinComponent) -> None:
        self.invite_create = part.admit.invite_create
        self.join_handshake = part.admit.join_handshake
        self.join_knock = part.admit.join_knock
        self.join_pending = part.admit.join_pending
        self.join_approve = part.admit.join_approve
        self.join_reject = part.admit.join_reject
        self.join_token = part.joiner.join_token
        self.join_ask = part.joiner.join_ask
        self.part = part

    async def node_remove(self, body: Empty, caller: Caller, id: str) -> jm.NodeRemoved:
        return await remove_node(self.part, id)
