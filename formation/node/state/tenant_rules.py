"""What an account's key may sign, and who controls an account's instances.

A tenant's desired state is an op whose author is the tenant's own key (a node only relays it,
docs/protocol.md "Tenants"), so these checks judge the author against the accounts of the op's
causal past (accounts.py), like every other rule: every replica gives the same verdict.

- An account key may sign only TENANT_KINDS; instance ops carry no `move` (moving work between
  hosts is the operators' business).
- `instance.create` and `image.add` must name the signing key's account (tenant_images.py
  judges images).
- `instance.create` with `account` makes the instance the account's; only a key of that very
  account may write it, and a tenant's create must name its account.
- An account's instance is controlled by any key of the account, by the keys of admin accounts
  and by network admins; a member node that is neither is refused (nodes write only observed
  status for the work placed on them).
Each check returns None or (reason, message); rules.py raises the refusal."""

from __future__ import annotations

from typing import Any

from formation.node.state.authority import Authority
from formation.node.state.op import Op

TENANT_KINDS = frozenset({"instance.create", "instance.update", "instance.delete",
                          "route.set", "route.remove",  # routes: judged in route_rules.py
                          "image.add", "image.remove"})  # images: tenant_images.py
TENANT_UPDATE_FIELDS = frozenset({"instance", "spec", "desired", "boot", "force"})
Problem = tuple[str, str] | None


def author_problem(op: Op, auth: Authority, author: str) -> Problem:
    """For an author that is not a member: may this account key sign this op at all?"""
    account = auth.accounts.of_key(author)
    if account is None:
        return ("unauthorized", f"{op.kind}: author {author[:16]} is neither a member nor a key "
                "of an account")
    if op.kind not in TENANT_KINDS:
        return ("unauthorized", f"{op.kind}: an account's key may sign only "
                + ", ".join(sorted(TENANT_KINDS)))
    if op.kind in ("instance.create", "image.add") and op.payload.get("account") != account.name:
        return ("unauthorized", f"payload.account: expected {account.name!r}, the account of "
                "the key that signs")
    if op.kind == "instance.update":
        extra = set(op.payload) - TENANT_UPDATE_FIELDS
        if extra:
            return ("unauthorized", f"payload.{sorted(extra)[0]}: an account may not set this")
    return None


def create_problem(payload: dict[str, Any], auth: Authority, author: str) -> Problem:
    """An instance.create's optional `account`: only a key of that account may name it."""
    if "account" not in payload:
        return None
    name = payload["account"]
    account = auth.accounts.of_key(author)
    if account is None or account.name != name:
        return ("unauthorized", f"payload.account: only a key of account {str(name)[:64]!r} "
                "may create its instances")
    return None


def control_problem(op: Op, created: Op, auth: Authority, author: str) -> Problem:
    """May `author` write `op` about the instance `created` made?"""
    if auth.is_admin(author):
        return None
    owner = created.payload.get("account")
    mine = auth.accounts.of_key(author)
    if owner is None:  # a node's instance: its creator (a node) or an admin
        if created.author.hex() == author or (mine is not None and mine.admin):
            return None
    elif mine is not None and (mine.name == owner or mine.admin):
        return None
    whose = f"account {owner!r}" if owner is not None else "its creator"
    return ("unauthorized", f"{op.kind}: only {whose} or an admin controls this instance")


def owner_of(created: Op) -> str | None:
    """The account an instance belongs to (None: a node's own)."""
    owner = created.payload.get("account")
    return owner if isinstance(owner, str) else None
