"""The state store as a part of the node: opens the replica in the data directory, lets members'
keys sign requests, publishes every applied op and every equivocation found on the event stream
(topic `state`), counts refused ops in metrics, and runs replication with the configured peers."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from prometheus_client import Counter

from formation.api.models import HealthCheck
from formation.errors import FormationError
from formation.node.state.buffer import PendingBuffer
from formation.node.state.grant_keys import GranteeKeys
from formation.node.state.handlers import StateHandlers
from formation.node.state.op import Op, OpError
from formation.node.state.store import StateStore
from formation.node.state.sync import Replication

if TYPE_CHECKING:
    from formation.api.state_models import PeerSyncState
    from formation.node.service import NodeService

log = logging.getLogger(__name__)

DB_FILE = "state.db"
ADDRESS_TRIGGERS = frozenset({"network.genesis", "node.admit", "node.roles", "invite.consume",
                              "address.claim"})


class StateComponent:
    name = "state"

    def __init__(self) -> None:
        self.store: StateStore | None = None
        self.replication: Replication | None = None
        self.service: NodeService | None = None

    async def start(self, service: NodeService) -> None:
        self.service = service
        cfg = service.settings.state
        assert service.identity is not None
        network = bytes.fromhex(cfg.network) if cfg.network else None
        buffer = PendingBuffer(cfg.buffer_max_ops, cfg.buffer_max_mb * 1024 * 1024)
        self.store = await StateStore.open(service.settings.data_dir / DB_FILE, service.identity,
                                           network, buffer)
        if network and self.store.network_id != network:
            await self.store.close()
            raise FormationError(f"state.network is {cfg.network} but the replica in "
                                 f"{service.settings.data_dir} belongs to "
                                 f"{self.store.network_id.hex() if self.store.network_id else '?'}")
        self._applied = Counter("formation_state_ops_applied", "Ops applied to the replica",
                                registry=service.metrics.registry)
        self._refused = Counter("formation_state_ops_refused", "Ops refused, by reason",
                                ["reason"], registry=service.metrics.registry)
        self.store.subscribe(self._publish)
        if cfg.claim_address:
            self._address_wanted = asyncio.Event()
            self.store.subscribe(self._maybe_claim)
            service.spawn(self._address_keeper())
        self.store.on_refused(lambda reason, n: self._refused.labels(reason).inc(n))
        self.store.on_equivocation(lambda evidence: service.publish("state", "equivocation",
                                                                    evidence))
        self.replication = Replication(self.store, service.identity, list(cfg.peers),
                                       cfg.anti_entropy_interval_s)
        peer_keys = self.replication.peer_keys()
        service.key_authorities.append(self.store.is_member_key)
        service.key_authorities.append(peer_keys.__contains__)
        service.admin_authorities.append(lambda key: key in self.require_store().admins)
        service.account_authorities.append(lambda key: key in self.require_store().account_keys)
        grantees = GranteeKeys.from_view(await self.store.view("grants"))  # grant_keys.py
        self.store.subscribe(grantees.note)
        service.account_authorities.append(grantees.__contains__)
        for coro in self.replication.tasks():
            service.spawn(coro)
        service.spawn(self._held_releaser())
        log.info("state store open", extra={"fields": {
            "ops": self.store.replica.count, "peers": len(cfg.peers),
            "network": self.store.network_id.hex() if self.store.network_id else "none"}})

    def _publish(self, ops: list[Op], origin: str | None) -> None:
        assert self.service is not None
        self._applied.inc(len(ops))
        for op in ops:
            self.service.publish("state", op.kind, {**op.summary(), "origin": origin})

    def _maybe_claim(self, ops: list[Op], origin: str | None) -> None:
        if any(op.kind in ADDRESS_TRIGGERS for op in ops):
            self._address_wanted.set()

    async def _address_keeper(self) -> None:
        """Keeps this node holding one mesh address while it is a member."""
        assert self.store is not None
        self._address_wanted.set()
        while True:
            await self._address_wanted.wait()
            self._address_wanted.clear()
            try:
                await self.store.ensure_address()
            except OpError as exc:
                log.warning("cannot claim a mesh address", extra={"fields": {"error": str(exc)}})

    async def _held_releaser(self) -> None:
        """Judges ops held back for being stamped in the future once their time comes (an
        ingest does that too; this covers a quiet network)."""
        assert self.store is not None
        while True:
            due = self.store.next_held_due_ms()
            wait = 5.0 if due is None else min(5.0, max(0.05, (due - time.time() * 1000) / 1000))
            await asyncio.sleep(wait)
            if due is not None and due <= time.time() * 1000:
                try:
                    await self.store.release_held()
                except Exception:
                    log.exception("judging held-back ops failed")

    def require_store(self) -> StateStore:
        if self.store is None:
            raise RuntimeError("state store not started")
        return self.store

    def network_hex(self) -> str | None:
        """The network this replica belongs to, in hex; None before founding or joining."""
        network = self.store.network_id if self.store is not None else None
        return network.hex() if network else None

    def peer_states(self) -> list[PeerSyncState]:
        return [p.state() for p in self.replication.peers] if self.replication else []

    def wake_anti_entropy(self) -> None:
        if self.replication:
            self.replication.anti_entropy.wake.set()

    async def after_local_write(self) -> None:
        self.wake_anti_entropy()

    async def stop(self) -> None:
        if self.replication is not None:
            await self.replication.close()
        if self.store is not None:
            await self.store.close()

    def api_handlers(self) -> object:
        return StateHandlers(self)

    def health(self) -> list[HealthCheck]:
        if self.store is None:
            return [HealthCheck(name="state", ok=False, detail="not open")]
        r = self.store.replica
        detail = (f"{r.count} ops, network {r.network.hex() if r.network else 'none'}, "
                  f"{len(r.buffer)} buffered")
        if r.equivocation_count:
            detail += f", {r.equivocation_count} equivocation(s)"
        return [HealthCheck(name="state", ok=True, detail=detail)]
