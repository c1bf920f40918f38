"""Which account ops revoke which keys, for the views (revocation.py).

An op signed by an account's key is judged in its causal past (tenant_rules.py): once the
removal of its account, or an `account.set` that dropped its key, is in an op's past, the op is
refused. An op that did not see the revocation (signed "before" it, or by a stolen key on
purpose with old parents) is accepted, as every replica must; it is then *void*, like a removed
node's concurrent ops, when the revocation did not see it either: a revoked key's ops stand only
if the revocation's causal past holds them.

A valid account op R (set or remove of account A) revokes key K when K was a key of A as of
R's causal past (the latest valid op about A there, by (HLC, id)) and R leaves K out."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet

from formation.node.state.account_invites import REDEEM, redeemed_revoked
from formation.node.state.accounts import ACCOUNT_KINDS
from formation.node.state.authority import Resolution
from formation.node.state.layered import Layered
from formation.node.state.op import Op


def account_revocations(res: Resolution, ops: Mapping[bytes, Op],
                        past_of: Mapping[bytes, AbstractSet[bytes]]) -> dict[str, tuple[Op, ...]]:
    """key hex -> the valid account ops that revoked it, in (HLC, id) order."""
    by_name: dict[str, list[Op]] = {}
    for op_id in res.valid:
        op = ops.get(op_id)
        if op is not None and op.kind in ACCOUNT_KINDS:
            by_name.setdefault(op.payload["name"], []).append(op)
        elif op is not None and op.kind == REDEEM:  # a key an invite added (account_invites)
            by_name.setdefault(op.payload["account"], []).append(op)
    found: dict[str, list[Op]] = {}
    for same in by_name.values():
        same.sort(key=lambda o: o.order_key)
        for rev in same:
            if rev.kind == REDEEM:
                continue
            for key in redeemed_revoked(rev, same, past_of):
                found.setdefault(key, []).append(rev)
    return {k: tuple(v) for k, v in found.items()}


def revoked_keys(rev: Op, revocations: Mapping[str, tuple[Op, ...]]) -> list[str]:
    """The keys `rev` revoked (usually few: an account has at most 8)."""
    return [key for key, revs in revocations.items() if any(r.id == rev.id for r in revs)]


def extended(base: Resolution, op: Op, res: Resolution) -> Mapping[str, tuple[Op, ...]]:
    """account_revocations of `res` = extend(base, op) from those of `base`, without the
    walk over every account op: op saw all of base, so the latest valid op about its account
    in its past is the latest in base's fold, which holds that account's keys exactly when
    that op was a set. Nothing else changes (op is in no other op's past). Tested equal to
    account_revocations of the resolution from scratch."""
    found = base.account_revocations
    if op.kind not in ACCOUNT_KINDS or op.id not in res.valid:
        return found
    prior = base.authority.accounts.by_name.get(op.payload["name"])
    if prior is None:
        return found
    kept = set(op.payload["keys"]) if op.kind == "account.set" else set()
    dropped = [key for key in prior.keys if key not in kept]
    if not dropped:
        return found
    persistent = found if isinstance(found, Layered) else Layered.of(found)  # O(1) per rotation
    return persistent.updated({key: (*found.get(key, ()), op) for key in dropped})
