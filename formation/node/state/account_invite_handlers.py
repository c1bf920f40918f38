"""Handlers of the account invite endpoints (api/account_invite_routes.py), mixed into
StateHandlers.

An admin node makes the invite: a fresh secret, the one-time invite key derived from it, the
`account.invite` op, and the token (discovery/account_token.py) carrying the secret. The node
keeps no copy of the secret: the token is the only way to the invite key.

The person's key redeems it over TCP like a tenant relays an op (tenant_handlers.py): the node
drafts the `account.redeem` body, the key signs it, the node ingests it. The draft endpoint is
open to any signing key (the key is nobody's yet), so the node checks the token's proof, the
invite and the account first, with the rule's own function: a stranger without the token gets
a 403 (counted by the join door's throttle, node/guesses.py) and no draft, so the bounded draft
book fills only with token holders' drafts."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from formation.api import account_invite_models as im
from formation.api import account_models as am
from formation.api.caller import Caller
from formation.api.errors import BadRequest, Forbidden, NotFound
from formation.api.models import Empty
from formation.discovery import account_token
from formation.discovery.token import TokenError
from formation.node.state import account_invites
from formation.node.state.draft_relay import ingest_drafted, issue_draft, signed_op
from formation.node.state.op import OpError
from formation.node.state.tenant_drafts import DraftBook

if TYPE_CHECKING:
    from formation.identity import NodeIdentity
    from formation.node.state.component import StateComponent
    from formation.node.state.store import StateStore



class AccountInviteHandlers:
    component: StateComponent

    @property
    def store(self) -> StateStore:
        raise NotImplementedError

    @property
    def redeem_drafts(self) -> DraftBook:
        book = self.__dict__.get("_redeem_drafts")
        if book is None:
            book = self.__dict__["_redeem_drafts"] = DraftBook()
        return book

    def _admin_identity(self) -> NodeIdentity:
        service = self.component.service
        store = self.store
        if service is None or service.identity is None or store.network_id is None:
            raise Forbidden("This node belongs to no network")
        if service.identity.public_key_hex not in store.admins:
            raise Forbidden("This node is no admin of its network (account invites are "
                            "written by an admin node)")
        return service.identity

    async def _account_exists(self, name: str) -> None:
        if name not in (await self.store.authority()).accounts.by_name:
            raise NotFound(f"account {name!r}: no such account")

    async def account_invite_create(self, body: im.AccountInviteRequest, caller: Caller,
                                    name: str) -> im.AccountInvite:
        identity = self._admin_identity()
        await self._account_exists(name)
        endpoints = body.endpoints or self._advertised()
        if not endpoints:
            raise BadRequest("endpoints: this node serves its API on no TCP address it "
                             "advertises; give HOST:PORT the person can reach")
        expires_s = int(time.time()) + body.expires_s
        try:
            token = account_token.new_token(endpoints, identity.public_key, expires_s, name,
                                            os.urandom(16))
        except TokenError as exc:
            raise BadRequest(f"endpoints: {exc}") from None
        until_ms = expires_s * 1000
        try:
            op = await self.store.append("account.invite", {
                "account": name, "invite_key": token.invite_key_hex, "until_ms": until_ms})
        except OpError as exc:
            raise BadRequest(f"account.invite refused: {exc}") from None
        await self.component.after_local_write()
        return im.AccountInvite(token=token.encode(), account=name,
                                invite_key=token.invite_key_hex, op=op.id.hex(),
                                until_ms=until_ms, endpoints=list(token.endpoints),
                                admin_fingerprint=identity.fingerprint)

    def _advertised(self) -> list[str]:
        """The endpoints the node invites (join component) advertise, else this node's TCP
        listen addresses (not a wildcard one)."""
        service = self.component.service
        if service is None:
            return []
        for part in service.components:
            advertised = getattr(part, "advertised_endpoints", None)
            if callable(advertised):
                return list(advertised())
        return [a.removeprefix("tcp:") for a in service.listen_addresses()
                if a.startswith("tcp:") and not a.startswith("tcp:0.0.0.0")]

    async def account_invite_list(self, body: Empty, caller: Caller,
                                  name: str) -> im.AccountInvites:
        authority = await self.store.authority()
        if name not in authority.accounts.by_name:
            raise NotFound(f"account {name!r}: no such account")
        now_ms = int(time.time() * 1000)
        items = [im.OpenInvite(invite_key=key, op=inv.op, until_ms=inv.until_ms,
                               expired=inv.until_ms < now_ms)
                 for key, inv in sorted(authority.account_invites.items())
                 if inv.account == name]
        return im.AccountInvites(account=name, items=items)

    async def account_uninvite(self, body: Empty, caller: Caller, name: str,
                               invite_key: str) -> im.AccountUninvited:
        self._admin_identity()
        invite = (await self.store.authority()).account_invites.get(invite_key)
        if invite is None or invite.account != name:
            raise NotFound(f"invite {invite_key[:16]}: no open invite of account {name!r}")
        try:
            op = await self.store.append("account.uninvite", {"invite_key": invite_key})
        except OpError as exc:
            raise BadRequest(f"account.uninvite refused: {exc}") from None
        await self.component.after_local_write()
        return im.AccountUninvited(account=name, invite_key=invite_key, op=op.id.hex())

    # the person's side: redeem --------------------------------------------------------------
    async def account_redeem_draft(self, body: im.RedeemRequest, caller: Caller) -> am.Draft:
        if caller.local or caller.key is None:
            raise BadRequest("caller: a redeem is signed over TCP by the key that joins")
        key = caller.key
        store = self.store
        if store.network_id is None:
            raise Forbidden("This node belongs to no network")
        payload: dict[str, Any] = {"account": body.account, "key": key,
                                   "invite_key": body.invite_key, "proof": body.proof}
        problem = account_invites.request_problem(
            await store.authority(), store.network_id, payload, int(time.time() * 1000))
        if problem is not None:
            raise Forbidden(problem[1])
        return await issue_draft(store, self.redeem_drafts, key, account_invites.REDEEM,
                                 payload)

    async def account_redeem(self, body: am.SignedOp, caller: Caller) -> am.Relayed:
        raw, op = signed_op(body)
        author = op.author.hex()
        if caller.local or caller.key != author:
            raise Forbidden("op.author: must be the key that signs the request")
        if op.kind != account_invites.REDEEM:
            raise Forbidden(f"kind: only {account_invites.REDEEM} is relayed here")
        relayed = await ingest_drafted(self.store, self.redeem_drafts, raw, op, "redeem")
        if relayed.status == "accepted":
            await self.component.after_local_write()
        return relayed
