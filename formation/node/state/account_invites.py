"""Account invites: an admin invites a person into an account with a token, as nodes are invited.

- `account.invite {account, invite_key, until_ms}`, signed by a network admin: the account must
  exist in the op's causal past; `invite_key` is the public half of a one-time key derived from
  the token's secret (formation/discovery/account_token.py). The admin never learns the
  person's key, and the token holds no signature: whoever holds it may redeem it, once.
- `account.uninvite {invite_key}`, by an admin: the invite can no longer be redeemed by an op
  whose past holds the uninvite (a concurrent redeem still stands: like a concurrent use of a
  node invite, it was valid where it was made).
- `account.redeem {account, key, invite_key, proof}`, signed by the NEW key (`key` is the
  author), which the invited person holds; `proof` is the invite key's signature over
  (network, account, key), so a node relaying the redeem cannot put its own key in: the
  signature would not verify, and it cannot make another one without the token's secret.

All three are authority ops (authority.py): an account's keys change, and every op signed by
such a key is judged against the accounts of its causal past. A redeem is valid when, in its
causal past, the invite is open (written, not redeemed, not uninvited), for this account, not
expired at the redeem's HLC, the account exists with fewer than MAX_KEYS keys and the key is
nobody's yet. Two concurrent redeems of one invite: the earlier by (HLC, id) stands, the other
is void (authority.resolve), on every replica. A redeem concurrent with the removal of its
account adds nothing (the fold finds no account; tenant_revocation voids the key's concurrent
ops), and one that would make a ninth key adds nothing either."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError
from nacl.exceptions import ValueError as NaclValueError

from formation.discovery.account_token import proof_message
from formation.node.state.accounts import MAX_KEYS, keys_after

if TYPE_CHECKING:
    from formation.node.state.authority import Authority
    from formation.node.state.op import Op

INVITE_KINDS = frozenset({"account.invite", "account.uninvite"})  # an admin signs these
REDEEM = "account.redeem"  # the invited key signs it
KINDS = INVITE_KINDS | {REDEEM}
MAX_INVITE_MS = 30 * 86_400_000  # an invite lives at most 30 days past its op's time
Problem = tuple[str, str] | None


@dataclass(frozen=True)
class AccountInvite:
    account: str
    until_ms: int
    op: str  # the account.invite op's id, hex


def proof_verifies(network: bytes, account: str, key_hex: str, invite_key_hex: str,
                   proof_hex: str) -> bool:
    try:
        crypto_sign_open(bytes.fromhex(proof_hex) + proof_message(network, account, key_hex),
                         bytes.fromhex(invite_key_hex))
    except (BadSignatureError, NaclValueError, ValueError):
        return False
    return True


def invite_problem(op: Op, auth: Authority) -> Problem:
    """account.invite, judged in its causal past (who signs it is checked by rules.py)."""
    p = op.payload
    account = auth.accounts.by_name.get(p["account"])
    if account is None:
        return ("invalid", f"payload.account: no account {p['account']!r} in the op's past")
    if p["invite_key"] in auth.account_invites:
        return ("invalid", "payload.invite_key: an open invite has this key already")
    if not op.hlc[0] < p["until_ms"] <= op.hlc[0] + MAX_INVITE_MS:
        return ("invalid", "payload.until_ms: expected a time after the op's and at most 30 "
                "days after it")
    return None


def uninvite_problem(op: Op, auth: Authority) -> Problem:
    if op.payload["invite_key"] not in auth.account_invites:
        return ("invalid", "payload.invite_key: no open invite with this key in the op's past")
    return None


def redeem_problem(op: Op, auth: Authority, author: str) -> Problem:
    """account.redeem, judged in its causal past: everything but the concurrency of two redeems
    of one invite (authority.resolve decides that)."""
    if op.payload["key"] != author:
        return ("unauthorized", "account.redeem: must be signed by the key it adds "
                "(payload.key)")
    return request_problem(auth, op.network, op.payload, op.hlc[0])


def request_problem(auth: Authority, network: bytes, p: dict[str, Any], at_ms: int) -> Problem:
    """Whether the redeem `p` may join its key to its account in `auth` at time `at_ms`: the
    rule above, and what a node checks before drafting a redeem (account_invite_handlers.py)."""
    invite = auth.account_invites.get(p["invite_key"])
    if invite is None:
        return ("unauthorized", "account.redeem: no open invite with this key in the op's past "
                "(unknown, already redeemed or revoked)")
    if invite.account != p["account"]:
        return ("unauthorized", f"payload.account: the invite is for account "
                f"{invite.account!r}")
    if at_ms > invite.until_ms:
        return ("unauthorized", "account.redeem: the invite expired")
    if not proof_verifies(network, p["account"], p["key"], p["invite_key"], p["proof"]):
        return ("unauthorized", "payload.proof: does not verify (the invite key's signature "
                "over network, account and key)")
    account = auth.accounts.by_name.get(p["account"])
    if account is None:
        return ("unauthorized", f"payload.account: no account {p['account']!r} in the op's "
                "past (removed)")
    if len(account.keys) >= MAX_KEYS:
        return ("unauthorized", f"payload.account: {p['account']!r} has {MAX_KEYS} keys "
                "already")
    key = p["key"]
    holder = auth.accounts.by_key.get(key)
    if holder is not None or auth.is_member(key):
        return ("invalid", f"payload.key: {key[:16]} is already "
                + (f"a key of account {holder!r}" if holder else "a node's key"))
    return None


def used_tag(op: Op) -> str:
    """How a redeem's invite is named among the used invites of a resolution (beside node
    invites, named by their op id)."""
    return f"account:{op.payload['invite_key']}"


def redeem_stands(op: Op, auth: Authority, used: set[str]) -> bool:
    """For authority.resolve: a redeem stands when its invite is open in the valid ops of its
    past (a void invite, or one whose admin was removed concurrently, is not) and no earlier
    redeem (by HLC, id) used it."""
    invite = auth.account_invites.get(op.payload["invite_key"])
    return invite is not None and used_tag(op) not in used and op.hlc[0] <= invite.until_ms


def redeemed_revoked(rev: Op, same: list[Op], past_of: Mapping[bytes, AbstractSet[bytes]]
                     ) -> list[str]:
    """The keys an account op `rev` (set or remove) revokes (tenant_revocation.py), given the
    valid ops about its account in (HLC, id) order: its keys as of rev's past (the set, then
    the redeems, as the fold has them) that rev leaves out, and the keys of redeems concurrent
    with rev that the fold drops: all of them for a removal, and those ordered before a set
    that leaves them out (a set replaces the keys)."""
    past = past_of.get(rev.id, frozenset())
    kept = set(rev.payload["keys"]) if rev.kind == "account.set" else set()
    before = keys_after([o for o in same if o.id in past]) or ()
    revoked = [key for key in before if key not in kept]
    for other in same:
        if other.kind != REDEEM or other.id in past or rev.id in past_of.get(other.id, ()):
            continue
        key = other.payload["key"]
        if key not in kept and key not in revoked and (
                rev.kind == "account.remove" or other.order_key < rev.order_key):
            revoked.append(key)
    return revoked
