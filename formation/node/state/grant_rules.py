"""Delegation: an account grants another key a scoped, expiring capability, as a signed op.

`grant.set` {account, grantee, actions, on | prefix, until_ms} is signed by a key of `account`;
its op id is the grant's id. `grant.revoke` {grant} is signed by a key of the granting account
or by an admin (a network admin node or an admin account's key). A *use* is an ordinary
instance or image op signed by the grantee's key that names the grant and the account it acts for
(`grant`, `account` in its payload). It is judged as if a key of the granting account had
signed it (tenant_rules.py, the kind's own rule): ownership and quotas stay the account's, and a
grant can never do more than its granter could, as of the use's own causal past.

Why every replica gives a use the same verdict: the grant is a dependency of the use (a
referenced op, present before the use is judged); the expiry is judged against the use's own
HLC, not a replica's clock; the granting account and its keys are those of the use's causal
past (authority.py); and a revocation counts when it is in the use's causal past
(grant_revocation.py, checked with the quotas in tenant_usage.py, which walks the log).
A use that did not see a revocation is accepted alike everywhere and then void where the
revocation is known (grant_void.py).

Each check returns None or (reason, message), like tenant_rules.py; rules.py raises."""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from formation.node.state.authority import Authority
from formation.node.state.op import Op

KINDS = frozenset({"grant.set", "grant.revoke"})
USE_KINDS = frozenset({"instance.create", "instance.update", "instance.delete", "image.add",
                       "image.remove"})
# What a grant may allow: an account's own instance ops, with start and stop split out of
# update (start and stop change `desired` only; instance.update allows any tenant update), and
# its images (tenant_images.py): a grant's `on`/`prefix` then names images ("deploy images
# under prefix ci-": image.add, image.remove and instance.create with prefix ci-).
ACTIONS = ("instance.create", "instance.delete", "instance.start", "instance.stop",
           "instance.update", "image.add", "image.remove")
_KEEPS_ACCOUNT = frozenset({"instance.create", "image.add"})  # the use names it as the account's
# own op would; the others name the instance (or image) they are about
GRANT = "grant"  # the payload field of a use naming its grant
REF_FIELDS = {"grant.revoke": ("grant",)}
OPTIONAL_REF_FIELDS = {kind: (GRANT,) for kind in USE_KINDS}
MAX_UNTIL_MS = 2**53
Problem = tuple[str, str] | None
GetOp = Callable[[bytes], Op]
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_PREFIX = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def problem(op: Op, auth: Authority, author: str, get_op: GetOp) -> Problem:
    """The rule of grant.set and grant.revoke."""
    if op.kind == "grant.set":
        return _set_problem(op, auth, author)
    return _revoke_problem(op, auth, author, get_op)


def payload_problem(p: dict[str, Any]) -> str | None:
    """What is wrong with a grant.set payload ("payload.FIELD: expected ..."), or None."""
    extra = set(p) - {"account", "grantee", "actions", "on", "prefix", "until_ms"}
    if extra:
        return f"payload.{sorted(extra)[0]}: not a field of this kind"
    if not (isinstance(p.get("account"), str) and _NAME.match(p["account"])):
        return "payload.account: expected the granting account's name"
    if not (isinstance(p.get("grantee"), str) and _HEX64.match(p["grantee"])):
        return "payload.grantee: expected the grantee's Ed25519 key, 64 hex"
    actions = p.get("actions")
    if not (isinstance(actions, list) and actions and len(set(actions)) == len(actions)
            and all(a in ACTIONS for a in actions)):
        return "payload.actions: expected a list of distinct actions from " + ", ".join(ACTIONS)
    if ("on" in p) == ("prefix" in p):
        return "payload.on: expected exactly one of on (an instance name) or prefix"
    if "on" in p and not (isinstance(p["on"], str) and _NAME.match(p["on"])):
        return "payload.on: expected an instance or image name"
    if "prefix" in p and not (isinstance(p["prefix"], str) and _PREFIX.match(p["prefix"])):
        return "payload.prefix: expected the start of instance or image names (lowercase " \
            "letters, digits, '-')"
    until = p.get("until_ms")
    if not (isinstance(until, int) and not isinstance(until, bool) and 0 < until < MAX_UNTIL_MS):
        return "payload.until_ms: expected an expiry in Unix milliseconds"
    return None


def _set_problem(op: Op, auth: Authority, author: str) -> Problem:
    p = op.payload
    found = payload_problem(p)
    if found is not None:
        return ("invalid", found)
    mine = auth.accounts.of_key(author)
    if mine is None or mine.name != p["account"]:
        return ("unauthorized", f"grant.set: only a key of account {p['account']!r} may grant "
                "for it")
    if p["grantee"] == author or auth.is_member(p["grantee"]):
        return ("invalid", "payload.grantee: expected another key than the granter's and "
                "than a node's")
    if p["until_ms"] <= op.hlc[0]:
        return ("invalid", "payload.until_ms: expected a time after the grant's own")
    return None


def _revoke_problem(op: Op, auth: Authority, author: str, get_op: GetOp) -> Problem:
    if set(op.payload) != {"grant"}:
        return ("invalid", "payload: expected exactly {grant}")
    grant = get_op(bytes.fromhex(op.payload["grant"]))
    if grant.kind != "grant.set":
        return ("invalid", "payload.grant: does not name a grant.set op")
    if auth.is_admin(author):
        return None
    mine = auth.accounts.of_key(author)
    if mine is not None and (mine.admin or mine.name == grant.payload["account"]):
        return None
    return ("unauthorized", f"grant.revoke: only a key of account "
            f"{grant.payload['account']!r} or an admin may revoke its grants")


def uses_grant(op: Op) -> bool:
    return op.kind in USE_KINDS and GRANT in op.payload


def action_of(op: Op) -> str:
    """The action a use is: start and stop are updates that set `desired` only (with the
    restart counter, and for a stop the forced flag)."""
    if op.kind != "instance.update":
        return op.kind
    fields = set(op.payload) - {GRANT, "account", "instance"}
    desired = op.payload.get("desired")
    if desired == "running" and fields <= {"desired", "boot"}:
        return "instance.start"
    if desired == "stopped" and fields <= {"desired", "force"}:
        return "instance.stop"
    return "instance.update"


def covers(grant: dict[str, Any], action: str, target: str) -> bool:
    """Does a grant.set payload allow `action` on the instance named `target`?"""
    allowed = set(grant["actions"])
    if "instance.update" in allowed:
        allowed |= {"instance.start", "instance.stop"}
    if action not in allowed:
        return False
    if "on" in grant:
        return bool(target == grant["on"])
    return target.startswith(grant["prefix"])


@dataclasses.dataclass(frozen=True)
class Use:
    """A grantee's op as its granter would have signed it: judged by the ordinary rules."""

    op: Op
    key: str  # the granting key (a key of the account, as of the use's causal past)


_CACHE_MAX = 50_000
_known: OrderedDict[bytes, Op] = OrderedDict()  # op id -> op: an id names one op anywhere


def cached(get_op: GetOp) -> GetOp:
    """`get_op` remembering what it decoded: a use reads its grant and its instance's create
    (twice: for its target and for ownership), and a grantee uses one grant again and again."""
    def get(op_id: bytes) -> Op:
        found = _known.get(op_id)
        if found is None:
            found = _known[op_id] = get_op(op_id)
            if len(_known) > _CACHE_MAX:
                _known.popitem(last=False)
        return found
    return get


def as_granter(op: Op, auth: Authority, author: str, get_op: GetOp) -> Use | tuple[str, str]:
    """The use `op` (signed by `author`, not a member) as its granter's op, or why not.
    `get_op` should be cached() (the rules then read the instance's create from it again)."""
    p = op.payload
    grant = get_op(bytes.fromhex(p[GRANT]))
    if grant.kind != "grant.set":
        return ("invalid", "payload.grant: does not name a grant.set op")
    g = grant.payload
    if g["grantee"] != author:
        return ("unauthorized", f"payload.grant: not granted to key {author[:16]}")
    if p.get("account") != g["account"]:
        return ("invalid", f"payload.account: expected {g['account']!r}, the granting account")
    if op.hlc[0] >= g["until_ms"]:
        return ("unauthorized", f"payload.grant: expired at {g['until_ms']} ms, before this "
                f"op's time {op.hlc[0]} ms")
    granter = grant.author.hex()
    holder = auth.accounts.of_key(granter)
    if holder is None or holder.name != g["account"]:
        return ("unauthorized", f"payload.grant: account {g['account']!r} no longer holds the "
                "key that granted it")
    action = action_of(op)
    target = _target(op, get_op)
    if not covers(g, action, target):
        return ("unauthorized", f"payload.grant: does not allow {action} on {target[:64]!r}")
    payload = {k: v for k, v in p.items() if k != GRANT
               and (k != "account" or op.kind in _KEEPS_ACCOUNT)}
    return Use(dataclasses.replace(op, payload=payload), granter)


def _target(op: Op, get_op: GetOp) -> str:
    """The name of the instance or image a use is about (an add or create names it; the others
    refer to the op that made it)."""
    if op.kind in _KEEPS_ACCOUNT:
        name = op.payload.get("name")
    else:
        made = op.payload.get("image" if op.kind == "image.remove" else "instance")
        name = get_op(bytes.fromhex(made)).payload.get("name") \
            if isinstance(made, str) and _HEX64.match(made) else None
    return name if isinstance(name, str) else ""
