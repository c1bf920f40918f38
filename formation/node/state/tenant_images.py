"""Images owned by accounts (issue 18, item 3): who may add, remove and boot them.

An `image.add` with `account` makes the catalog entry the account's: only a key of that very
account may sign it (a node relays the tenant's signed op, tenant_handlers.py), so a member
node cannot write an image in a tenant's name, nor a tenant in another account's. An image.add
without `account` is a node's, as before. Images are content addressed: the entry is a claim on
a digest (the view keeps one element per add), not on the bytes, which nodes fetch from the
members that hold them.

- image.remove of an account's image: any key of that account, an admin account's key or a
  network admin; of a node's image: the node that added it, an admin account's key or a network
  admin (an account's key never removes a node's image).
- Booting (instance.create / instance.update with a spec): an account boots its own images and
  node-owned ones, never another account's. The rules cannot judge this (the spec names a
  digest, not the image.add op, so it is not in the op's causal past): the node relaying the
  tenant's draft checks it against its images view (tenant_handlers.py). Admin accounts boot any.
- Names: the relaying node refuses a tenant's image.add whose name another digest holds (nodes
  and commands find images by name, so a tenant's image must not shadow another's).

Each check returns None or (reason, message), like tenant_rules.py; rules.py raises."""

from __future__ import annotations

from typing import Any

from formation.node.state.accounts import Account
from formation.node.state.authority import Authority
from formation.node.state.op import Op

Problem = tuple[str, str] | None


def add_problem(payload: dict[str, Any], auth: Authority, author: str) -> Problem:
    """An image.add's optional `account`: only a key of that account may name it, and an
    account's image records no `builder` (a node records only its own builds)."""
    if "account" not in payload:
        return None
    name = payload["account"]
    mine = auth.accounts.of_key(author)
    if mine is None or mine.name != name:
        return ("unauthorized", f"payload.account: only a key of account {str(name)[:64]!r} "
                "may add its images")
    if "builder" in payload or "formfile" in payload:
        return ("unauthorized", "payload.builder: an account's image records no builder (a "
                "node records only the images it built)")
    return None


def remove_problem(added: Op, auth: Authority, author: str) -> Problem:
    """May `author` remove the image `added` made?"""
    if auth.is_admin(author):
        return None
    mine = auth.accounts.of_key(author)
    if mine is not None and mine.admin:
        return None
    owner = owner_of(added)
    if owner is None:
        if added.author.hex() == author:
            return None
        return ("unauthorized", "image.remove: only the node that added it or an admin")
    if mine is not None and mine.name == owner:
        return None
    return ("unauthorized", f"image.remove: only account {owner!r} or an admin removes this "
            "image")


def owner_of(added: Op) -> str | None:
    """The account an image.add belongs to (None: a node's)."""
    owner = added.payload.get("account")
    return owner if isinstance(owner, str) else None


def visible(images: list[dict[str, Any]], account: Account) -> list[dict[str, Any]]:
    """The images view as `account` lists it: its own elements (an admin account's: all)."""
    if account.admin:
        return images
    return [i for i in images if i.get("account") == account.name]


def bootable(images: list[dict[str, Any]], account: Account | None, digest: Any) -> bool:
    """May `account` boot the image `digest`: one of its own or a node's (an admin: any).
    An unknown digest is let through: the node placing the instance reports it missing."""
    if account is not None and account.admin:
        return True
    owners = {i.get("account") for i in images if i.get("key") == digest}
    if not owners:
        return True
    return None in owners or (account is not None and account.name in owners)


def name_taken(images: list[dict[str, Any]], payload: dict[str, Any]) -> str | None:
    """The name of an image.add when another digest holds it already (nodes and commands find
    images by name: a tenant's image must not shadow a node's or another account's), else
    None. Checked by the relaying node, as for instance names."""
    name = payload.get("name")
    if not isinstance(name, str):
        return None
    clash = any(i.get("name") == name and i.get("key") != payload.get("digest") for i in images)
    return name if clash else None
