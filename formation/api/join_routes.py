"""Endpoints of founding, inviting and joining. Founding itself is the state store's
`state_create_network`. The two endpoints another host calls before it is a member
(`join_handshake`, `join_knock`) have the ANY_KEY audience: their requests must still carry a
valid signature, but the key need not be known; the handler decides."""

from __future__ import annotations

from formation.api import join_models as jm
from formation.api.caller import Audience as A
from formation.api.endpoint import Endpoint
from formation.api.models import Empty

LOCAL_ONLY = ((403, "Only local callers (the unix socket) may do this"),)
REFUSED = ((403, "The join is refused: used, expired or forged token, wrong network, "
                 "rejected, or this node is no admin"),)
# The join door's limits (docs/operations.md, "Limits"): answered with a Retry-After header.
THROTTLED = ((429, "Too many failed join attempts, or pending joins, from this address"),)

invite_create = Endpoint(
    "invite_create", "POST", "/v1/invites", jm.InviteRequest, jm.Invite,
    "An admin makes a one-time, expiring invite token (local callers only)",
    errors=LOCAL_ONLY,
    audience=A.LOCAL,
)
join_token = Endpoint(
    "join_token", "POST", "/v1/join/token", jm.JoinTokenRequest, jm.JoinResult,
    "Join the network a token invites to: handshake with its bootstrap endpoints, sync "
    "(local callers only)",
    errors=(*LOCAL_ONLY, (409, "This node already belongs to another network"),
            (502, "No bootstrap endpoint of the token answered")),
    audience=A.LOCAL,
)
join_ask = Endpoint(
    "join_ask", "POST", "/v1/join/ask", jm.JoinAskRequest, jm.JoinResult,
    "Ask an admin to join without a token and wait until approved (local callers only)",
    errors=(*LOCAL_ONLY, *REFUSED, (502, "The admin did not answer"),
            (504, "Not approved in time")),
    audience=A.LOCAL,
)
join_handshake = Endpoint(
    "join_handshake", "POST", "/v1/join/handshake", jm.JoinHandshake, jm.JoinHandshakeAnswer,
    "Node to node: a joiner proves its key and the token, receives the state, hands in its "
    "admission op",
    errors=(*REFUSED, *THROTTLED),
    audience=A.ANY_KEY,
)
join_knock = Endpoint(
    "join_knock", "POST", "/v1/join/knock", jm.JoinKnock, jm.JoinKnockAnswer,
    "Node to node: a host without a token asks to join; it waits as pending",
    errors=(*REFUSED, *THROTTLED, (503, "Too many pending joins")),
    audience=A.ANY_KEY,
)
join_pending = Endpoint(
    "join_pending", "GET", "/v1/join/pending", Empty, jm.PendingJoins,
    "Hosts waiting for an admin's approval",
    audience=A.ADMIN,
)
join_approve = Endpoint(
    "join_approve", "POST", "/v1/join/pending/{id}/approve", Empty, jm.JoinDecision,
    "Admit a pending host: writes node.admit (local callers only)",
    path_patterns=(("id", r"^n[a-z2-7]{24}$"),),
    errors=(*LOCAL_ONLY, (404, "No such pending join")),
    audience=A.LOCAL,
)
join_reject = Endpoint(
    "join_reject", "POST", "/v1/join/pending/{id}/reject", Empty, jm.JoinDecision,
    "Refuse a pending host (local callers only)",
    path_patterns=(("id", r"^n[a-z2-7]{24}$"),),
    errors=(*LOCAL_ONLY, (404, "No such pending join")),
    audience=A.LOCAL,
)

node_remove = Endpoint(
    "node_remove", "POST", "/v1/nodes/{id}/remove", Empty, jm.NodeRemoved,
    "An admin removes a node from the network: writes node.remove (local callers only)",
    path_patterns=(("id", r"^n[a-z2-7]{24}$"),),
    errors=(*LOCAL_ONLY, (404, "No such member node"),
            (409, "This node cannot remove itself")),
    audience=A.LOCAL,
)

ENDPOINTS = (invite_create, join_token, join_ask, join_handshake, join_knock, join_pending,
             join_approve, join_reject, node_remove)
