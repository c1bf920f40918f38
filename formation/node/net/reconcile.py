"""The mesh reconciler's core: desired peers in, the fewest per-peer changes out, applied one at
a time. It does not know where the desired set comes from (the state store's node records will
feed it); it only reads the interface's actual state and compares."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from formation.node.net.backend import WireGuardBackend
from formation.node.net.peers import (
    InterfaceStatus,
    PeerConfig,
    PeerStatus,
    WireGuardError,
    normalize_allowed_ips,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DesiredPeer:
    """One other node as the mesh wants it: its key, where it can be reached (in order of
    preference) and the addresses that live behind it (mesh address, VM subnet)."""

    node_id: str
    public_key: str
    endpoints: tuple[str, ...] = ()
    allowed_ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class PeerChange:
    action: Literal["add", "update", "remove"]
    public_key: str
    node_id: str | None
    config: PeerConfig | None
    reason: str


def choose_endpoint(desired: DesiredPeer, actual: PeerStatus | None,
                    unanswered: bool = False, roamed: bool = False) -> str | None:
    """Keep the endpoint in use while it is still one of the peer's endpoints (no needless
    re-pointing), unless it went `unanswered`: then the next one listed, round the list.
    Otherwise the first one listed. None leaves it to the peer to reach us. An endpoint the
    peer `roamed` to (WireGuard learnt it from the peer's authenticated packets) is kept even
    when not listed: the peer moved and its new record is still on its way."""
    listed = desired.endpoints
    if roamed and actual is not None and actual.endpoint:
        return actual.endpoint
    if actual is not None and actual.endpoint in listed:
        if unanswered and len(listed) > 1:
            return listed[(listed.index(actual.endpoint) + 1) % len(listed)]
        return actual.endpoint
    return listed[0] if listed else None


def _differences(want: PeerConfig, have: PeerStatus) -> list[str]:
    found = []
    if want.endpoint is not None and want.endpoint != have.endpoint:
        found.append(f"endpoint {have.endpoint} -> {want.endpoint}")
    if want.allowed_ips != normalize_allowed_ips(have.allowed_ips):
        found.append(f"allowed IPs {','.join(have.allowed_ips)} -> {','.join(want.allowed_ips)}")
    if want.persistent_keepalive != have.persistent_keepalive:
        found.append(f"keepalive {have.persistent_keepalive} -> {want.persistent_keepalive}")
    return found


def plan_changes(desired: Iterable[DesiredPeer], actual: InterfaceStatus,
                 persistent_keepalive: int = 25,
                 held: frozenset[str] | set[str] = frozenset(),
                 unanswered: frozenset[str] | set[str] = frozenset(),
                 roamed: frozenset[str] | set[str] = frozenset()) -> list[PeerChange]:
    """Removals first, then updates, then additions. Peers already right are not touched.
    The interface's own key in `desired` is skipped: a node is not its own peer. Peers in
    `held` get keepalive 0 for now (see `MeshReconciler`: the other side starts the handshake);
    peers in `unanswered` move on to their next endpoint; peers in `roamed` keep theirs."""
    wanted: dict[str, DesiredPeer] = {}
    for peer in desired:
        if peer.public_key == actual.public_key:
            continue
        other = wanted.get(peer.public_key)
        if other is not None and other.node_id != peer.node_id:
            raise WireGuardError(f"nodes {other.node_id} and {peer.node_id} claim the same "
                                 f"WireGuard key {peer.public_key}")
        wanted[peer.public_key] = peer
    have = {p.public_key: p for p in actual.peers}
    removals = [PeerChange("remove", key, None, None, "no longer in the mesh")
                for key in have if key not in wanted]
    updates, additions = [], []
    for key, peer in wanted.items():
        current = have.get(key)
        config = PeerConfig(key, choose_endpoint(peer, current, key in unanswered,
                                                 key in roamed),
                            peer.allowed_ips,
                            0 if key in held else persistent_keepalive)
        if current is None:
            additions.append(PeerChange("add", key, peer.node_id, config, "new in the mesh"))
        elif diffs := _differences(config, current):
            updates.append(PeerChange("update", key, peer.node_id, config, "; ".join(diffs)))
    return removals + updates + additions


@dataclass
class ReconcileResult:
    applied: list[PeerChange] = field(default_factory=list)
    failed: list[tuple[PeerChange, str]] = field(default_factory=list)


class MeshReconciler:
    """Applies a desired peer set to one interface. Remembers which node a key belongs to, for
    status.

    A handshake initiation that reaches a node before that node has the sender as a peer is
    dropped, and two initiations that cross make each side drop the answer to its own; either
    way WireGuard retries only after 5 s. So of each pair only the node with the higher public
    key (base64, compared as text) turns keepalive on when adding (that starts a handshake at
    once); the other adds the peer with keepalive 0 and turns it on HOLD_S later by itself (a
    follow-up pass), starting a handshake then only if none happened meanwhile. `close()`
    cancels a pending follow-up.

    The hold is for peers both sides learn of at about the same time (a network starting, a
    node restarting: its first peer set). A peer that appears later joined the network after
    this node: it got this node's record with the state when it joined, so it already has
    this node as a peer, and whatever it sent was dropped here. This node starts that
    handshake at once, whichever key is higher; waiting would only add HOLD_S to every join.

    A peer with several endpoints that stays without a fresh handshake for ENDPOINT_TRY_S
    after being pointed somewhere is moved to its next endpoint on the next pass; call
    `reconcile` periodically (the mesh component does) for that to happen.

    A peer whose underlay address changed sends from its new address at once; WireGuard
    follows it there (roaming). Until its new `wg_endpoints` arrive through the state, the
    listed endpoint is the old one: a peer whose endpoint differs from what this reconciler
    last set, with a live session, is left where it roamed to instead of being pointed back."""

    HOLD_S = 1.0
    ENDPOINT_TRY_S = 6.0  # WireGuard retries a handshake every 5 s
    STALE_HANDSHAKE_S = 180.0  # WireGuard's Reject-After-Time: a session this old is dead

    def __init__(self, backend: WireGuardBackend, persistent_keepalive: int = 25) -> None:
        self.backend = backend
        self.persistent_keepalive = persistent_keepalive
        self.node_ids: dict[str, str] = {}
        self.last_desired: list[DesiredPeer] | None = None  # None: never told
        self._added_at: dict[str, float] = {}
        self._pointed_at: dict[str, float] = {}
        self._endpoint_set: dict[str, str] = {}  # the endpoint this reconciler last gave a peer
        self._held: set[str] = set()
        self._first_set: frozenset[str] | None = None  # keys of the first non-empty peer set
        self._lock = asyncio.Lock()
        self._follow_up: asyncio.Task | None = None

    @property
    def pending(self) -> bool:
        """A peer's keepalive is still held; the follow-up pass will release it."""
        return bool(self._held)

    def close(self) -> None:
        if self._follow_up is not None:
            self._follow_up.cancel()
            self._follow_up = None

    async def _release_held(self) -> None:
        await asyncio.sleep(self.HOLD_S)
        self._follow_up = None
        try:
            await self.reapply()
        except WireGuardError as exc:
            log.error("mesh follow-up pass failed", extra={"fields": {"error": str(exc)}})

    def _hold(self, actual: InterfaceStatus, desired: list[DesiredPeer]) -> set[str]:
        if not self.persistent_keepalive or actual.public_key is None:
            return set()
        have = {p.public_key: p for p in actual.peers}
        now = time.monotonic()
        held = set()
        if self._first_set is None and desired:
            self._first_set = frozenset(p.public_key for p in desired)
        for peer in desired:
            key = peer.public_key
            if key <= actual.public_key:
                continue  # this node starts the handshake
            if self._first_set is not None and key not in self._first_set:
                continue  # joined after this node: it is waiting for us
            current = have.get(key)
            if current is not None and (current.latest_handshake > 0
                                        or current.persistent_keepalive):
                continue
            if current is None or now - self._added_at.get(key, 0.0) < self.HOLD_S:
                held.add(key)  # about to be added, or added by this reconciler moments ago
        return held

    def _unanswered(self, actual: InterfaceStatus, desired: list[DesiredPeer]) -> set[str]:
        have = {p.public_key: p for p in actual.peers}
        now, wall = time.monotonic(), time.time()
        found = set()
        for peer in desired:
            current = have.get(peer.public_key)
            if len(peer.endpoints) < 2 or current is None:
                continue
            if current.latest_handshake and wall - current.latest_handshake < \
                    self.STALE_HANDSHAKE_S:
                continue
            pointed = self._pointed_at.setdefault(peer.public_key, now)
            if now - pointed >= self.ENDPOINT_TRY_S:
                found.add(peer.public_key)
        return found

    def _roamed(self, actual: InterfaceStatus, desired: list[DesiredPeer]) -> set[str]:
        have = {p.public_key: p for p in actual.peers}
        wall = time.time()
        found = set()
        for peer in desired:
            current, given = have.get(peer.public_key), self._endpoint_set.get(peer.public_key)
            if current is None or not current.endpoint or given is None:
                continue
            if current.endpoint in peer.endpoints:
                self._endpoint_set[peer.public_key] = current.endpoint  # adopted
                continue
            live = current.latest_handshake and \
                wall - current.latest_handshake < self.STALE_HANDSHAKE_S
            if current.endpoint != given and live:
                found.add(peer.public_key)
        return found

    async def renew_endpoints(self) -> int:
        """This host's underlay address changed: set every peer's endpoint again, unchanged.
        wireguard-go remembers the source address it last sent from per peer; while that one
        is gone its packets fail until a handshake retry, 5 s and more later. A freshly set
        endpoint has no source remembered, so the next packet leaves from the new address and
        the peers roam to it at once. Returns the peers touched."""
        touched = 0
        async with self._lock:
            for peer in (await self.backend.status()).peers:
                if peer.endpoint:
                    await self.backend.set_peer(peer.config())
                    touched += 1
        return touched

    async def reapply(self) -> ReconcileResult | None:
        """Applies the last desired set again (repairs drift, releases held peers, moves
        unanswered ones). Read under the lock: a set captured before waiting for it could be
        older than one applied meanwhile, and would undo it (drop a peer just added)."""
        async with self._lock:
            if self.last_desired is None:
                return None
            result = await self._reconcile(self.last_desired)
        self._schedule_follow_up()
        return result

    async def reconcile(self, desired: Iterable[DesiredPeer]) -> ReconcileResult:
        async with self._lock:
            result = await self._reconcile(list(desired))
        self._schedule_follow_up()
        return result

    def _schedule_follow_up(self) -> None:
        if self._held and self._follow_up is None:
            self._follow_up = asyncio.get_running_loop().create_task(self._release_held())

    async def _reconcile(self, desired: list[DesiredPeer]) -> ReconcileResult:
        actual = await self.backend.status()
        self._held = self._hold(actual, desired)
        changes = plan_changes(desired, actual, self.persistent_keepalive, self._held,
                               self._unanswered(actual, desired), self._roamed(actual, desired))
        result = ReconcileResult()
        for change in changes:
            try:
                if change.action == "remove":
                    await self.backend.remove_peer(change.public_key)
                    self._added_at.pop(change.public_key, None)
                    self._pointed_at.pop(change.public_key, None)
                    self._endpoint_set.pop(change.public_key, None)
                else:
                    assert change.config is not None
                    await self.backend.set_peer(change.config)
                    if change.config.endpoint:
                        self._endpoint_set[change.public_key] = change.config.endpoint
                    if change.action == "add":
                        self._added_at[change.public_key] = time.monotonic()
                    if change.action == "add" or "endpoint" in change.reason:
                        self._pointed_at[change.public_key] = time.monotonic()
            except WireGuardError as exc:
                result.failed.append((change, str(exc)))
                log.error("mesh peer change failed", extra={"fields": {
                    "action": change.action, "peer": change.public_key, "error": str(exc)}})
                continue
            result.applied.append(change)
            log.info("mesh peer changed", extra={"fields": {
                "action": change.action, "node": change.node_id or "-",
                "peer": change.public_key, "why": change.reason}})
        self.node_ids = {p.public_key: p.node_id for p in desired}
        self.last_desired = desired
        return result
