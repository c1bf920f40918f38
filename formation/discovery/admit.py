"""The admin side of joining: invite tokens, the token handshake, and pending joins.

The handshake and the knock are called by hosts that are not members yet. The server verified
their request signature (any key, for these two paths only); here the caller's key is what the
token proof and the admission op must name, so nobody can join on someone else's behalf."""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError
from nacl.exceptions import ValueError as NaclValueError

from formation.api import join_models as jm
from formation.api import state_models as sm
from formation.api.caller import Caller
from formation.api.errors import BadRequest, Forbidden, NotFound, TooManyRequests, Unavailable
from formation.api.models import Empty
from formation.discovery import token as tokens
from formation.discovery.pending_joins import (
    FILE_NAME,
    Pending,
    PendingJoins,
    TooMany,
    knock_source,
)
from formation.errors import OpError
from formation.identity import node_id_for

if TYPE_CHECKING:
    from formation.discovery.join import JoinComponent

HANDSHAKE_MAX_BYTES = 700_000
HANDSHAKE_MAX_OPS = 2000
ROLES = {"node": ["member"], "admin": ["admin", "member"]}


def refuse(message: str) -> Forbidden:
    return Forbidden(message)


class AdmitSide:
    def __init__(self, part: JoinComponent) -> None:
        self.part = part
        self._pending: PendingJoins | None = None  # read from the data dir when first needed
        self._lock = asyncio.Lock()  # one admission at a time: a token cannot be used twice

    @property
    def pending(self) -> PendingJoins:
        """The hosts waiting for approval, as saved in the data dir (bounded, expiring)."""
        if self._pending is None:
            settings = self.part.runtime.settings
            api = settings.api
            self._pending = PendingJoins(settings.data_dir / FILE_NAME, api.pending_joins_max,
                                         api.pending_joins_per_source, api.pending_join_expiry_s)
        return self._pending

    def require_admin(self) -> bytes:
        """Refuses unless this node is an admin of its network; returns the network's id."""
        store = self.part.store
        network = store.network_id
        if network is None:
            raise refuse("This node belongs to no network (found one: formation network create)")
        if self.part.identity.public_key_hex not in store.admins:
            raise refuse("This node is no admin of its network")
        return network

    async def _network_name(self) -> str:
        rows = await self.part.store.view("network")
        return rows[0]["name"] if rows else ""

    # invites ------------------------------------------------------------------------------
    async def invite_create(self, body: jm.InviteRequest, caller: Caller) -> jm.Invite:
        network = self.require_admin()
        part, store = self.part, self.part.store
        endpoints = part.advertised_endpoints()
        if not endpoints:
            raise BadRequest("api.listen: this node serves its API on no TCP address, so a "
                             "joining host could not reach it")
        expires_s = int(time.time()) + body.expires_s
        roles = ROLES[body.role]
        ident = part.identity
        try:
            token = tokens.new_token(endpoints, ident.public_key, expires_s,
                                     os.urandom(tokens.SECRET_BYTES))
        except tokens.TokenError as exc:
            raise BadRequest(f"api.listen: {exc}") from None
        expires_ms = expires_s * 1000
        try:
            op, _ = await store.create_invite(expires_ms, tuple(roles), token.seed)
        except OpError as exc:
            raise BadRequest(f"cannot create the invite: {exc}") from None
        await part.state.after_local_write()
        part.runtime.publish("join", "invite_created", {
            "invite": op.id.hex(), "expires_ms": expires_ms, "roles": roles})
        return jm.Invite(token=token.encode(), invite=op.id.hex(),
                         network=network.hex(), expires_ms=expires_ms,
                         roles=roles, endpoints=list(token.endpoints),
                         admin_fingerprint=ident.fingerprint)

    # the token handshake -------------------------------------------------------------------
    async def join_handshake(self, body: jm.JoinHandshake,
                             caller: Caller) -> jm.JoinHandshakeAnswer:
        key = caller.require_key()
        store = self.part.store
        if store.network_id is None:
            raise refuse("This node belongs to no network")
        if body.network != store.network_id.hex():
            raise refuse(f"Wrong network: the joiner asks for {body.network}, this node is in "
                         f"{store.network_id.hex()}")
        async with self._lock:
            invite = await self._check_invite(body, key)
            name = await self._network_name()
            if invite.get("consumed_by") == key or store.is_member_key(key):
                self._note_address(key, body.address)
                return jm.JoinHandshakeAnswer(network=body.network, network_name=name,
                                              invite=invite["key"], admitted=True)
            if body.consume is not None:
                await self._admit(body.consume, key, invite["key"])
                self._note_address(key, body.address)
                self.part.runtime.publish("join", "admitted", {
                    "node": node_id_for(bytes.fromhex(key)), "key": key, "by": "invite",
                    "invite": invite["key"]})
                return jm.JoinHandshakeAnswer(network=body.network, network_name=name,
                                              invite=invite["key"], admitted=True)
        try:
            vv = {bytes.fromhex(a): int(s) for a, s in body.vv.items()}
        except ValueError:
            raise BadRequest("vv: expected author keys as hex") from None
        raws, more, after = await store.ops_after(vv, HANDSHAKE_MAX_OPS, HANDSHAKE_MAX_BYTES)
        return jm.JoinHandshakeAnswer(
            network=body.network, network_name=name, invite=invite["key"], admitted=False,
            batch=sm.OpBatch(ops=self.part.wire.pack(raws), count=len(raws)), more=more,
            next_vv={a.hex(): s for a, s in after.items()})

    async def _check_invite(self, body: jm.JoinHandshake, key: str) -> dict:
        """The invite whose one-time key is the token's (the token carries no invite id): the
        one this key consumed if any, else an unused one."""
        found = [i for i in await self.part.store.view("invites")
                 if i.get("token_key") == body.token_key]
        if not found:
            raise refuse("Unknown invite: this network has no invite for this token (made by "
                         "another admin or network?)")
        invite = next((i for i in found if i.get("consumed_by") in (None, key)), found[0])
        consumed_by = invite.get("consumed_by")
        if consumed_by is not None and consumed_by != key:
            raise refuse("Token already used: an invite admits one node, once")
        if consumed_by is None and time.time() * 1000 > invite["expires_ms"]:
            raise refuse("Token expired: ask an admin for a new one")
        message = tokens.handshake_proof_message(bytes.fromhex(body.network),
                                                 bytes.fromhex(body.token_key), key)
        try:
            crypto_sign_open(bytes.fromhex(body.proof) + message, bytes.fromhex(body.token_key))
        except (BadSignatureError, NaclValueError):
            raise refuse("Token proof does not verify (tampered or incomplete token)") from None
        return invite

    async def _admit(self, consume: sm.OpBatch, key: str, invite: str) -> None:
        """Applies the joiner's own invite.consume op (the handshake's `consume`): the
        admission op of a token join."""
        wire = self.part.wire
        try:
            raws = wire.unpack(consume.ops)
            op = wire.decode(raws[0]) if len(raws) == 1 else None
        except ValueError:  # no packed batch (WireError), no op (OpError)
            op = None
        if (op is None or op.kind != "invite.consume" or op.author.hex() != key
                or op.payload.get("invite") != invite):
            raise BadRequest("consume: expected one invite.consume op, signed by the joining "
                             "node, for this invite")
        verdict = (await self.part.store.ingest([op.raw], origin=key))[0]
        if verdict.status not in ("accepted", "duplicate"):
            raise refuse(f"Admission op {verdict.status}: {verdict.message or verdict.reason}")

    def _note_address(self, key: str, address: str) -> None:
        if address:
            self.part.add_replication_peer(address, key)

    # joins without a token -----------------------------------------------------------------
    async def join_knock(self, body: jm.JoinKnock, caller: Caller) -> jm.JoinKnockAnswer:
        key = caller.require_key()
        store = self.part.store
        node = node_id_for(bytes.fromhex(key))
        network = store.network_id.hex() if store.network_id else ""
        if store.is_member_key(key):
            self._note_address(key, body.address)
            return jm.JoinKnockAnswer(id=node, status="admitted", network=network)
        pending = self.pending
        if pending.is_rejected(key):
            return jm.JoinKnockAnswer(id=node, status="rejected", network=network)
        self.require_admin()
        try:
            found, new = pending.knock(key, body.name, body.address, knock_source())
        except TooMany as exc:
            if exc.per_source:
                raise TooManyRequests(str(exc)) from None
            raise Unavailable(str(exc)) from None
        await pending.save()
        if new:
            shown = found.model(pending.expiry_s).model_dump(mode="json")
            self.part.runtime.publish("join", "pending", shown)
        return jm.JoinKnockAnswer(id=node, status="pending", network=network)

    async def join_pending(self, body: Empty, caller: Caller) -> jm.PendingJoins:
        found = self.pending.entries()
        await self.pending.save()  # the expired ones are gone
        return jm.PendingJoins(pending=[p.model(self.pending.expiry_s) for p in found])

    def _take(self, node: str) -> Pending:
        self.pending.entries()  # an expired one cannot be approved
        found = self.pending.take(node)
        if found is None:
            raise NotFound(f"No pending join {node} (see formation join pending)")
        return found

    async def join_approve(self, body: Empty, caller: Caller, id: str) -> jm.JoinDecision:
        self.require_admin()
        found = self._take(id)
        try:
            await self.part.store.append("node.admit", {"node": found.key, "roles": ["member"]})
        except OpError as exc:
            self.pending.put_back(found)
            raise BadRequest(f"cannot admit {id}: {exc}") from None
        await self.pending.save()
        await self.part.state.after_local_write()
        self._note_address(found.key, found.address)
        self.part.runtime.publish("join", "admitted", {
            "node": id, "key": found.key, "by": "approval"})
        return jm.JoinDecision(id=id, key=found.key, status="admitted")

    async def join_reject(self, body: Empty, caller: Caller, id: str) -> jm.JoinDecision:
        self.require_admin()
        found = self._take(id)
        self.pending.reject(found.key)
        await self.pending.save()
        self.part.runtime.publish("join", "rejected", {
            "node": id, "key": found.key})
        return jm.JoinDecision(id=id, key=found.key, status="rejected")
