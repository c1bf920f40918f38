"""Models of founding, inviting and joining (formation/discovery/join.py)."""


from typing import Literal

from pydantic import Field

from formation.api.models import Model
from formation.api.state_models import OpBatch


class InviteRequest(Model):
    expires_s: int = Field(3600, ge=1, le=30 * 24 * 3600,
                           description="seconds until the token expires")
    role: Literal["node", "admin"] = Field("node", description="what the joiner becomes")


class Invite(Model):
    token: str = Field(description="the one-time token to hand to the joining host, grouped "
                       "for reading (FMN2-XXXX-...)")
    invite: str = Field(description="the invite op's id")
    network: str
    expires_ms: int
    roles: list[str]
    endpoints: list[str] = Field(description="bootstrap endpoints carried in the token")
    admin_fingerprint: str


class JoinTokenRequest(Model):
    token: str = Field(min_length=1, max_length=1024,
                       description="an invite token; case, spaces and dashes do not matter")


class JoinAskRequest(Model):
    address: str = Field(pattern=r"^[^\s]+:[0-9]{1,5}$", description="an admin's HOST:PORT")
    wait_s: float = Field(600.0, gt=0, le=3600, description="how long to wait for approval")


class JoinResult(Model):
    network: str
    network_name: str
    node_id: str
    admitted_by: str = Field(description="the admin node's key that admitted this node")
    ops: int = Field(description="ops in this replica after the join")
    steps: list[str] = Field(description="what the handshake did, in order")


class JoinHandshake(Model):
    """Sent by a joining node to an admin, signed with the joiner's node key."""

    network: str = Field(pattern=r"^[0-9a-f]{32}$",
                         description="the admin's network id, as its hello answered")
    token_key: str = Field(pattern=r"^[0-9a-f]{64}$",
                           description="the public half of the token's one-time key: names the "
                           "invite (its invite.create op holds it)")
    proof: str = Field(pattern=r"^[0-9a-f]{128}$",
                       description="the token key's signature over the handshake proof message")
    vv: dict[str, int] = Field(default_factory=dict, description="ops the joiner has already")
    consume: OpBatch | None = Field(None, description="the joiner's signed invite.consume op")
    address: str = Field("", max_length=255, description="the joiner's API HOST:PORT, if any")


class JoinHandshakeAnswer(Model):
    network: str
    network_name: str
    invite: str = Field(description="the id of the invite op the token key names")
    admitted: bool
    batch: OpBatch | None = None
    more: bool = False
    next_vv: dict[str, int] = Field(default_factory=dict)


class JoinKnock(Model):
    """A host without a token asking to join (signed with its node key)."""

    name: str = Field(max_length=63)
    address: str = Field("", max_length=255, description="its API HOST:PORT, if any")


class JoinKnockAnswer(Model):
    id: str
    status: Literal["pending", "admitted", "rejected"]
    network: str


class PendingJoin(Model):
    id: str = Field(description="the asking node's id: pass to approve/reject")
    key: str
    name: str
    address: str
    since: str
    asks: int
    expires_at: str | None = Field(None, description="when it is dropped unless the host asks "
                                   "again (api.pending_join_expiry_s after its last ask)")


class PendingJoins(Model):
    pending: list[PendingJoin]


class JoinDecision(Model):
    id: str
    key: str
    status: Literal["admitted", "rejected"]


class NodeRemoved(Model):
    id: str = Field(description="the removed node's id")
    key: str
    name: str
    op: str = Field(description="the node.remove op's id")
