"""Gossip and membership endpoints."""

from __future__ import annotations

from formation.api import p2p_models as pm
from formation.api.caller import Audience as A
from formation.api.endpoint import Endpoint
from formation.api.models import Empty

gossip_push = Endpoint(
    "gossip_push", "POST", "/v1/p2p/gossip", pm.GossipBatch, pm.GossipAck,
    "Node to node: a batch of signed gossip envelopes (503 when the inbox is full)",
    errors=((503, "Inbox full: back off and retry the batch"),),
    audience=A.MEMBER,
)
gossip_publish = Endpoint(
    "gossip_publish", "POST", "/v1/p2p/publish", pm.PublishRequest, pm.PublishResult,
    "Local callers only: sign and publish a message on a topic (diagnostics, benchmarks)",
    errors=((403, "Only local callers (the unix socket) may publish"),),
    audience=A.LOCAL,
)
gossip_status = Endpoint(
    "gossip_status", "GET", "/v1/p2p/gossip", Empty, pm.GossipStatus,
    "Gossip counters and per-peer queues",
    audience=A.MEMBER,
)
members = Endpoint(
    "members", "GET", "/v1/members", Empty, pm.Members,
    "Membership from heartbeats: alive, suspect or dead, per node",
    audience=A.MEMBER,
)

ENDPOINTS = (gossip_push, gossip_publish, gossip_status, members)
