"""The one list of hosts this node knows about, whoever found them. mDNS, bootstrap contacts and
peers' heartbeats all write here; gossip reads its targets from here."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from formation.api.discovery_models import UNENROLLED, DiscoveredPeer, PeerKind, PeerSource

Listener = Callable[[str, "PeerRecord"], None]  # (kind: found|updated|lost, record)
MAX_PEERS = 4096


@dataclass
class PeerRecord:
    node_id: str
    public_key: str
    address: str
    network: str = UNENROLLED
    name: str = ""
    version: str = ""
    sources: set[PeerSource] = field(default_factory=set)
    first_seen: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_seen: datetime = field(default_factory=lambda: datetime.now(UTC))

    def kind(self, own_network: str) -> PeerKind:
        if self.network == UNENROLLED:
            return "unenrolled"
        return "peer" if self.network == own_network else "foreign"


def natural_key(name: str) -> list:
    """h2 before h10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


class PeerTable:
    """Bounded (a flood of fake mDNS records cannot grow it without end); changes are told to
    listeners so they reach the event stream."""

    def __init__(self, self_id: str) -> None:
        self.self_id = self_id
        self._peers: dict[str, PeerRecord] = {}
        self._listeners: list[Listener] = []

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _tell(self, kind: str, record: PeerRecord) -> None:
        for listener in self._listeners:
            listener(kind, record)

    def get(self, node_id: str) -> PeerRecord | None:
        return self._peers.get(node_id)

    def records(self) -> list[PeerRecord]:
        return sorted(self._peers.values(), key=lambda r: (natural_key(r.name), r.node_id))

    def observe(self, source: PeerSource, node_id: str, public_key: str, address: str, *,
                network: str | None = None, name: str | None = None,
                version: str | None = None) -> PeerRecord | None:
        """Adds or refreshes a host. Ignores this node itself and new hosts past the bound."""
        if node_id == self.self_id:
            return None
        record = self._peers.get(node_id)
        if record is None:
            if len(self._peers) >= MAX_PEERS:
                return None
            record = PeerRecord(node_id=node_id, public_key=public_key, address=address,
                                sources={source})
            self._apply(record, network, name, version)
            self._peers[node_id] = record
            self._tell("found", record)
            return record
        before = (record.address, record.network, record.name, record.version,
                  frozenset(record.sources))
        if public_key != record.public_key:
            return record  # a node id is bound to one key; a different key is an impostor
        record.address = address  # hearsay (peer exchange) only ever adds new hosts
        record.sources.add(source)
        self._apply(record, network, name, version)
        record.last_seen = datetime.now(UTC)
        after = (record.address, record.network, record.name, record.version,
                 frozenset(record.sources))
        if after != before:
            self._tell("updated", record)
        return record

    @staticmethod
    def _apply(record: PeerRecord, network: str | None, name: str | None,
               version: str | None) -> None:
        if network is not None:
            record.network = network
        if name:
            record.name = name
        if version:
            record.version = version

    def forget_source(self, node_id: str, source: PeerSource) -> None:
        """mDNS said goodbye: the host stays known (it may still be alive), only the source
        goes; with no source left it is removed."""
        record = self._peers.get(node_id)
        if record is None or source not in record.sources:
            return
        record.sources.discard(source)
        if record.sources:
            self._tell("updated", record)
        else:
            del self._peers[node_id]
            self._tell("lost", record)

    def to_model(self, record: PeerRecord, own_network: str, trusted: bool) -> DiscoveredPeer:
        return DiscoveredPeer(
            node_id=record.node_id, name=record.name, public_key=record.public_key,
            network=record.network, address=record.address, version=record.version,
            sources=sorted(record.sources), kind=record.kind(own_network),
            trusted=trusted, first_seen=record.first_seen, last_seen=record.last_seen,
        )
