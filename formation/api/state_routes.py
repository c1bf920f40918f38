"""Endpoints of the replicated state store (formation/node/state)."""

from __future__ import annotations

from formation.api import state_models as sm
from formation.api.caller import Audience as A
from formation.api.endpoint import Endpoint
from formation.api.models import Empty

LOCAL_ONLY = ((403, "Only local callers (the unix socket) may do this"),)
NOT_FOUND = ((404, "No such collection or op"),)

state_status = Endpoint(
    "state_status", "GET", "/v1/state/status", Empty, sm.StateStatus,
    "The replica: network, op count, heads, buffer, refused ops, equivocations, peers",
    audience=A.MEMBER,
)
state_heads = Endpoint(
    "state_heads", "GET", "/v1/state/heads", Empty, sm.StateHeads,
    "The ops no other op builds on yet",
    audience=A.MEMBER,
)
state_view = Endpoint(
    "state_view", "GET", "/v1/state/views/{collection}", Empty, sm.StateView,
    "A view: network, nodes, addresses, instances, images, dns, invites or accounts",
    path_patterns=(("collection", sm.COLLECTION),),
    errors=NOT_FOUND,
    audience=A.MEMBER,
)
state_op = Endpoint(
    "state_op", "GET", "/v1/state/ops/{op_id}", Empty, sm.StateOp,
    "One op by id, decoded, with its signed envelope",
    path_patterns=(("op_id", sm.HEX_ID),),
    errors=NOT_FOUND,
    audience=A.MEMBER,
)
state_log = Endpoint(
    "state_log", "GET", "/v1/state/log", Empty, sm.StateOpPage,
    "The op log in this replica's order, a page at a time", query=sm.LogQuery,
    audience=A.MEMBER,
)
state_create_network = Endpoint(
    "state_create_network", "POST", "/v1/state/network", sm.CreateNetworkRequest, sm.StateOp,
    "Found a network: writes the genesis op, this node its first admin (local callers only)",
    errors=LOCAL_ONLY,
    audience=A.LOCAL,
)
state_append = Endpoint(
    "state_append", "POST", "/v1/state/ops", sm.AppendRequest, sm.StateOp,
    "Sign and apply an op as this node (local callers only)",
    errors=LOCAL_ONLY,
    audience=A.LOCAL,
)
state_verify = Endpoint(
    "state_verify", "POST", "/v1/state/verify", Empty, sm.VerifyResult,
    "Re-check every stored op's encoding, id, signature and parent links",
    errors=LOCAL_ONLY,
    audience=A.LOCAL,
)
state_rebuild = Endpoint(
    "state_rebuild", "POST", "/v1/state/rebuild", Empty, sm.RebuildResult,
    "Recompute the views from the log and compare with the incremental ones (local only)",
    errors=LOCAL_ONLY,
    audience=A.LOCAL,
)
state_sync_push = Endpoint(
    "state_sync_push", "POST", "/v1/state/sync/push", sm.OpBatch, sm.PushResult,
    "Receive new ops from a peer",
    audience=A.MEMBER,
)
state_sync_range = Endpoint(
    "state_sync_range", "POST", "/v1/state/sync/range", sm.RangeRequest, sm.RangeResult,
    "Anti-entropy: ops above the asker's version vector, in causal order",
    audience=A.MEMBER,
)
state_sync_walk = Endpoint(
    "state_sync_walk", "POST", "/v1/state/sync/walk", sm.WalkRequest, sm.OpBatch,
    "Anti-entropy: wanted ops and the ancestors the asker's version vector does not cover",
    audience=A.MEMBER,
)

STATE_ENDPOINTS = (
    state_status, state_heads, state_view, state_op, state_log, state_create_network,
    state_append, state_verify, state_rebuild, state_sync_push, state_sync_range,
    state_sync_walk,
)
