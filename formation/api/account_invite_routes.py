"""Endpoints of account invites. An admin's node makes and revokes them (local callers only:
writing ops as the node is for its operators); the person redeems one with a key that is no
account's yet, so the two redeem endpoints have the ANY_KEY audience: the request must be
signed, by any key, and the handler checks the token's proof before drafting anything."""

from __future__ import annotations

from typing import Any

from formation.api import account_invite_models as im
from formation.api import account_models as am
from formation.api.caller import Audience as A
from formation.api.endpoint import Endpoint
from formation.api.models import Empty

_NAME = (("name", r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"),)
LOCAL_ONLY = ((403, "Only local callers (the unix socket) of an admin node may do this"),)
REFUSED = ((403, "The invite is unknown, used, revoked or expired, the proof does not verify, "
                 "or the account cannot take the key"),
           (409, "The op waits for ops this node does not have yet, or was not drafted here: "
                 "draft it again"),
           # the join door's throttle (node/guesses.py) counts these routes' failures too
           (429, "Too many failed attempts from this address: retry after Retry-After"))

account_invite_create = Endpoint(
    "account_invite_create", "POST", "/v1/accounts/{name}/invites", im.AccountInviteRequest,
    im.AccountInvite,
    "Invite a person into an account: writes account.invite and returns the token",
    path_patterns=_NAME, errors=(*LOCAL_ONLY, (404, "No such account")), audience=A.LOCAL,
)
account_invite_list = Endpoint(
    "account_invite_list", "GET", "/v1/accounts/{name}/invites", Empty, im.AccountInvites,
    "An account's open invites (neither redeemed nor revoked)",
    path_patterns=_NAME, errors=((404, "No such account"),), audience=A.ADMIN,
)
account_uninvite = Endpoint(
    "account_uninvite", "POST", "/v1/accounts/{name}/invites/{invite_key}/revoke", Empty,
    im.AccountUninvited,
    "Revoke an open invite: writes account.uninvite",
    path_patterns=(*_NAME, ("invite_key", r"^[0-9a-f]{64}$")),
    errors=(*LOCAL_ONLY, (404, "No such open invite")), audience=A.LOCAL,
)
account_redeem_draft = Endpoint(
    "account_redeem_draft", "POST", "/v1/account-invites/draft", im.RedeemRequest, am.Draft,
    "The account.redeem op body for the signing key to sign (after checking the proof)",
    errors=REFUSED, audience=A.ANY_KEY,
)
account_redeem = Endpoint(
    "account_redeem", "POST", "/v1/account-invites/redeem", am.SignedOp, am.Relayed,
    "Relay the signed account.redeem: the signing key joins the account",
    errors=REFUSED, audience=A.ANY_KEY,
)

ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (
    account_invite_create, account_invite_list, account_uninvite, account_redeem_draft,
    account_redeem)
