"""Membership as soft state: a node is alive while its heartbeats are fresh, suspect after
`suspect_after_s` of silence and dead after `dead_after_s`. A heartbeat from a suspect or dead
node revives it. Every transition is returned to the caller, which publishes it as an event.

The clock is injectable so the state machine can be checked step by step."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from formation.api.p2p_models import Member, MemberStateName
from formation.discovery.peers import natural_key

ALIVE: Final = "alive"
SUSPECT: Final = "suspect"
DEAD: Final = "dead"


@dataclass
class MemberRecord:
    node_id: str
    name: str
    address: str
    state: MemberStateName
    last_heard: float
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    heartbeats: int = 0
    rtt_ms: float | None = None  # from heartbeat echoes (rtt.py)


@dataclass(frozen=True)
class Transition:
    node_id: str
    kind: str  # joined | suspect | dead | alive (from suspect) | revived (from dead)
    previous: str | None
    record: MemberRecord


class MembershipTable:
    def __init__(self, suspect_after_s: float, dead_after_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.suspect_after_s = suspect_after_s
        self.dead_after_s = dead_after_s
        self.clock = clock
        self._members: dict[str, MemberRecord] = {}
        # WireGuard handshake age by node id, from the mesh. Shown, not counted as liveness:
        # wireguard-go outlives a killed node service and keeps answering handshakes.
        self.handshake_age: Callable[[str], float | None] = lambda node_id: None

    def get(self, node_id: str) -> MemberRecord | None:
        return self._members.get(node_id)

    def records(self) -> list[MemberRecord]:
        return sorted(self._members.values(), key=lambda r: (natural_key(r.name), r.node_id))

    def heard(self, node_id: str, name: str, address: str) -> Transition | None:
        now = self.clock()
        record = self._members.get(node_id)
        if record is None:
            record = MemberRecord(node_id, name, address, ALIVE, now, heartbeats=1)
            self._members[node_id] = record
            return Transition(node_id, "joined", None, record)
        record.last_heard = now
        record.heartbeats += 1
        record.name, record.address = name or record.name, address or record.address
        if record.state == ALIVE:
            return None
        previous = record.state
        self._set(record, ALIVE)
        return Transition(node_id, "revived" if previous == DEAD else "alive", previous, record)

    def tick(self) -> list[Transition]:
        """Ages every member; call it often (a tenth of the heartbeat interval)."""
        now = self.clock()
        changes = []
        for record in self._members.values():
            silent = now - record.last_heard
            target: MemberStateName = DEAD if silent >= self.dead_after_s else (
                SUSPECT if silent >= self.suspect_after_s else ALIVE)
            if target != record.state and target != ALIVE:
                previous = record.state
                self._set(record, target)
                changes.append(Transition(record.node_id, target, previous, record))
        return changes

    @staticmethod
    def _set(record: MemberRecord, state: MemberStateName) -> None:
        record.state = state
        record.since = datetime.now(UTC)

    def to_model(self, record: MemberRecord) -> Member:
        return Member(node_id=record.node_id, name=record.name, address=record.address,
                      state=record.state,
                      last_heard_s=round(self.clock() - record.last_heard, 3),
                      since=record.since, heartbeats=record.heartbeats,
                      rtt_ms=round(record.rtt_ms, 2) if record.rtt_ms is not None else None,
                      handshake_age_s=_rounded(self.handshake_age(record.node_id)))


def _rounded(age: float | None) -> float | None:
    return None if age is None else round(age, 1)
