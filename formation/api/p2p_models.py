"""Gossip envelopes and membership, as they travel between nodes and to clients."""


from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from formation.api.models import Model

TOPIC_PATTERN = r"^[a-z][a-z0-9_.-]{0,31}$"


class Envelope(Model):
    """One gossip message. `id` is the SHA-256 of the signed fields (see docs/protocol.md);
    `hops` is the only field a relay changes, so it is not signed."""

    id: str = Field(pattern=r"^[0-9a-f]{64}$")
    topic: str = Field(pattern=TOPIC_PATTERN)
    origin_key: str = Field(pattern=r"^[0-9a-f]{64}$", description="author's Ed25519 key, hex")
    created: float = Field(description="author's unix time, seconds")
    nonce: str = Field(pattern=r"^[0-9a-f]{16}$")
    payload: dict[str, Any]
    hops: int = Field(ge=0, le=16, description="relays left")
    signature: str = Field(pattern=r"^[0-9a-f]{128}$")


class GossipBatch(Model):
    envelopes: list[Envelope] = Field(max_length=1024)


class GossipAck(Model):
    queued: int
    duplicates: int


class PublishRequest(Model):
    topic: str = Field(pattern=TOPIC_PATTERN)
    payload: dict[str, Any] = Field(default_factory=dict)


class PublishResult(Model):
    id: str
    targets: int = Field(description="peers the envelope was queued for")


class PeerQueue(Model):
    node_id: str
    address: str
    queued: int
    sent: int
    dropped: int
    failures: int
    backoff_s: float


class GossipStatus(Model):
    delivered: int
    duplicates: int
    rejected: int
    busy_refusals: int = Field(description="batches refused because the inbox was full")
    inbox: int
    peers: list[PeerQueue]


MemberStateName = Literal["alive", "suspect", "dead"]


class Member(Model):
    node_id: str
    name: str
    address: str
    state: MemberStateName
    last_heard_s: float = Field(description="seconds since its last heartbeat")
    since: datetime = Field(description="when it entered this state")
    heartbeats: int
    rtt_ms: float | None = Field(None, description="round-trip time from heartbeat echoes, "
                                 "smoothed; null until one of ours came back")
    handshake_age_s: float | None = Field(
        None, description="seconds since the last WireGuard handshake with it; null: none yet "
        "or no mesh")


class Members(Model):
    self_id: str
    heartbeat_s: float
    suspect_after_s: float
    dead_after_s: float
    members: list[Member]
