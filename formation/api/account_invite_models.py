"""Models of the account invite endpoints (api/account_invite_routes.py): an admin invites a
person into an account with a token; the person's key redeems it through any endpoint of the
token (docs/protocol.md, "Account invites")."""

from __future__ import annotations

from pydantic import Field

from formation.api.models import Model

MAX_EXPIRES_S = 30 * 86400
_HEX64 = r"^[0-9a-f]{64}$"


class AccountInviteRequest(Model):
    expires_s: int = Field(86400, ge=1, le=MAX_EXPIRES_S,
                           description="how long the token is valid, in seconds (at most 30 days)")
    endpoints: list[str] | None = Field(None, max_length=8,
                                        description="HOST:PORT the person reaches this node at "
                                        "(default: the addresses this node advertises)")


class AccountInvite(Model):
    token: str = Field(description="FMA1-...: hand it to the person (it holds the secret)")
    account: str
    invite_key: str
    op: str = Field(description="the account.invite op")
    until_ms: int
    endpoints: list[str]
    admin_fingerprint: str


class OpenInvite(Model):
    invite_key: str
    op: str
    until_ms: int
    expired: bool = Field(description="past until_ms by this node's clock (unusable)")


class AccountInvites(Model):
    account: str
    items: list[OpenInvite] = Field(description="invites written and neither redeemed nor "
                                    "revoked, as this replica knows them")


class AccountUninvited(Model):
    account: str
    invite_key: str
    op: str = Field(description="the account.uninvite op")


class RedeemRequest(Model):
    account: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    invite_key: str = Field(pattern=_HEX64)
    proof: str = Field(pattern=r"^[0-9a-f]{128}$",
                       description="the invite key's signature over 'formation-account-invite-"
                       "proof-v1' 0x00 || network (16 bytes) || len(account) || account || key")
