"""Handlers of the tenant endpoints (api/account_routes.py): a node relays ops signed by an
account's key. It drafts the body (seq, prev, parents and HLC from its replica), the client
checks and signs it, and the node ingests the signed envelope like any op from a peer: the rules
judge the tenant's key, so a node can neither forge nor alter a tenant's op (the signature would
fail on every replica), and an op relayed twice is the same op, written once.

Before ingesting, the node checks what only it can: that the request's signing key is the op's
author (the node is no open relay for strangers' ops), that the key is an account's, that the
op's time is within MAX_SKEW_MS of this node's clock (a tenant cannot stamp its op far ahead to
win last-writer-wins races, or behind), that its seq is the key's next here, and that it is a
body this node drafted (tenant_drafts.py: no parents of the tenant's choosing). Two drafts
share a seq until one is relayed; the other is then refused here (a fork through another
node or a hostile member is an equivocation, recorded like any other)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from formation.api import account_models as am
from formation.api import grant_models as gm
from formation.api.account_usage import account_usage
from formation.api.caller import Caller
from formation.api.errors import BadRequest, Conflict, Forbidden
from formation.api.models import Empty
from formation.node.state import grant_handlers, tenant_images
from formation.node.state.accounts import Account
from formation.node.state.draft_relay import ingest_drafted, issue_draft, signed_op
from formation.node.state.tenant_drafts import DraftBook
from formation.node.state.tenant_rules import TENANT_KINDS

if TYPE_CHECKING:
    from formation.node.state.store import StateStore


class TenantHandlers:
    """Mixed into StateHandlers (one handler object per part)."""

    @property
    def store(self) -> StateStore:
        raise NotImplementedError

    @property
    def drafts(self) -> DraftBook:
        book = self.__dict__.get("_tenant_drafts")
        if book is None:
            book = self.__dict__["_tenant_drafts"] = DraftBook()
        return book

    async def _account(self, caller: Caller, key: str | None = None) -> tuple[str, Account]:
        key, account = await self._principal(caller, key)
        if account is None:
            raise Forbidden(f"key {key[:16]}: not a key of any account of this network")
        return key, account

    async def _principal(self, caller: Caller, key: str | None = None
                         ) -> tuple[str, Account | None]:
        """The key a request acts with and its account (None: a grantee's key, or nobody's:
        the rules refuse what such a key signs without a grant)."""
        if caller.local:
            if key is None:
                raise BadRequest("author: a local caller names the account key to act for")
        else:
            key = caller.require_key()
        authority = await self.store.authority()
        return key, authority.accounts.of_key(key)

    async def tenant_draft(self, body: am.DraftRequest, caller: Caller) -> am.Draft:
        if not caller.local and body.author is not None:
            raise BadRequest("author: only local callers may name it; over TCP the op's "
                             "author is the key that signs the request")
        key, account = await self._principal(caller, body.author)
        _check_kind(body.kind)
        grant_handlers.check_relay(body.kind, body.payload, account)
        store = self.store
        if body.kind == "instance.create":
            name = body.payload.get("name")
            if any(i.get("name") == name for i in await store.view("instances")):
                raise Conflict(f"name: an instance {str(name)[:64]!r} exists already")
        if body.kind == "image.add":
            taken = tenant_images.name_taken(await store.view("images"), body.payload)
            if taken is not None:
                raise Conflict(f"name: an image {taken[:64]!r} exists already (another "
                               "digest): choose another name")
        spec = body.payload.get("spec")
        if body.kind in ("instance.create", "instance.update") and isinstance(spec, dict):
            image, acting = spec.get("image"), account
            if acting is None:  # a grantee's use: it boots what its granting account may
                named = body.payload.get("account")
                acting = (await store.authority()).accounts.by_name.get(named) \
                    if isinstance(named, str) else None
            if not tenant_images.bootable(await store.view("images"), acting, image):
                raise Forbidden(f"spec.image: {str(image)[:16]} is another account's image (an "
                                "account boots its own images and the nodes' ones)")
        return await issue_draft(store, self.drafts, key, body.kind, body.payload)

    async def tenant_submit(self, body: am.SignedOp, caller: Caller) -> am.Relayed:
        raw, op = signed_op(body)
        author = op.author.hex()
        if not caller.local and caller.key != author:
            raise Forbidden("op.author: must be the key that signs the request (a node relays "
                            "an account's own ops, not others')")
        _key, account = await self._principal(caller, author)
        _check_kind(op.kind)
        grant_handlers.check_relay(op.kind, op.payload, account)
        return await ingest_drafted(self.store, self.drafts, raw, op, "tenant")

    async def tenant_account(self, body: Empty, caller: Caller) -> am.TenantAccount:
        _key, account = await self._account(caller)
        instances = await self.store.view("instances")
        return am.TenantAccount(name=account.name, roles=sorted(account.roles),
                                quotas=dict(account.quotas),
                                usage=account_usage(instances, account.name))

    async def tenant_instances(self, body: Empty, caller: Caller) -> am.TenantInstances:
        key, account = await self._principal(caller)
        items = await self.store.view("instances")
        if account is None:  # a grantee's key: what its live grants name
            grants = grant_handlers.visible_grants(await self.store.view("grants"), key, None)
            return am.TenantInstances(account="", items=grant_handlers.granted_instances(
                items, grants))
        if not account.admin:
            items = [i for i in items if i.get("account") == account.name]
        return am.TenantInstances(account=account.name, items=items)

    async def tenant_images(self, body: Empty, caller: Caller) -> am.TenantImages:
        _key, account = await self._account(caller)
        items = tenant_images.visible(await self.store.view("images"), account)
        return am.TenantImages(account=account.name, items=items)

    async def tenant_grants(self, body: Empty, caller: Caller) -> gm.TenantGrants:
        key, account = await self._principal(caller)
        items = grant_handlers.visible_grants(await self.store.view("grants"), key, account)
        return gm.TenantGrants(account=account.name if account else None, items=items)


def _check_kind(kind: str) -> None:
    allowed = TENANT_KINDS | grant_handlers.RELAYED_KINDS
    if kind not in allowed:
        raise Forbidden(f"kind: an account may relay only {', '.join(sorted(allowed))}")
