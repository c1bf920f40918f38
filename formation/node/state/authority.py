"""Who may do what, as seen from an op's causal past.

Kleppmann's rule: an op's validity may depend only on its causal history, so every correct
replica reaches the same verdict. Membership and roles change only through a few *authority ops*
(genesis, admit, remove, roles, invite creation and consumption). Each accepted op carries the
set of authority ops in its causal past (its *context*); *resolving* that set (resolve below)
gives the roles the op is judged against. Contexts are shared between ops, interned and cached
(contexts.py), because they change only when an authority op is added or branches with
different authority ops merge.

Resolving is a pure function of a set of authority ops and their causal order, so any two
replicas holding the same set compute the same authority, whatever order the ops arrived in.
It voids what a revoked author signed without having seen its revocation (docs/protocol.md,
"Revocation"): an op concurrent with a removal of its author is void, and so is every authority
derived from a void op."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from formation.node.state import account_invites
from formation.node.state.account_invites import AccountInvite
from formation.node.state.accounts import ACCOUNT_KINDS, Accounts
from formation.node.state.layered import GONE, Layered, LayeredSet
from formation.node.state.op import Op

AUTHORITY_KINDS = frozenset({
    "network.genesis", "node.admit", "node.remove", "node.roles", "invite.create",
    "invite.consume", *ACCOUNT_KINDS, *account_invites.KINDS,
})
ADMIN_KINDS = frozenset({"node.admit", "node.remove", "node.roles", "invite.create",
                         *ACCOUNT_KINDS, *account_invites.INVITE_KINDS})
ADMIN = "admin"
ROLES = frozenset({ADMIN, "member"})


@dataclass
class Authority:
    """The fold of one context: network facts and who holds which role."""

    network_name: str = ""
    cidr: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    genesis: bytes | None = None
    members: dict[str, frozenset[str]] = field(default_factory=dict)  # key hex -> roles
    consumed_invites: set[str] = field(default_factory=set)
    accounts: Accounts = field(default_factory=Accounts)
    # open account invites (account_invites.py) by invite key: persistent, shared by copies
    account_invites: Layered[str, AccountInvite] = field(default_factory=Layered)

    def copy(self) -> Authority:
        return Authority(self.network_name, self.cidr, self.genesis, dict(self.members),
                         set(self.consumed_invites), self.accounts.copy(), self.account_invites)

    def is_member(self, key_hex: str) -> bool:
        return key_hex in self.members

    def is_admin(self, key_hex: str) -> bool:
        return ADMIN in self.members.get(key_hex, ())


def fold_authority(ops: list[Op]) -> Authority:
    """Authority ops in (HLC, id) order, all taken as valid (resolve decides which are). An
    invite is single-use: of two uses the earlier by (HLC, id) admits its node."""
    state = Authority()
    for op in sorted(ops, key=lambda o: o.order_key):
        _step(state, op)
    return state


def _step(state: Authority, op: Op) -> None:
    p = op.payload
    if op.kind == "network.genesis":
        state.genesis = op.id
        state.network_name = p["name"]
        state.cidr = ipaddress.ip_network(p["cidr"])
        state.members[op.author.hex()] = frozenset({ADMIN, "member"})
    elif op.kind in ("node.admit", "node.roles"):
        state.members[p["node"]] = frozenset(p.get("roles", ["member"])) | {"member"}
    elif op.kind == "node.remove":
        state.members.pop(p["node"], None)
    elif op.kind in ACCOUNT_KINDS:
        state.accounts.step(op.kind, p)
        if op.kind == "account.remove":  # its invites end with it (rare: a scan is fine)
            state.account_invites = state.account_invites.updated({
                k: GONE for k, v in state.account_invites.items() if v.account == p["name"]})
    elif op.kind == "account.invite":
        state.account_invites = state.account_invites.updated({p["invite_key"]: AccountInvite(
            p["account"], p["until_ms"], op.id.hex())})
    elif op.kind == "account.uninvite":
        if p["invite_key"] in state.account_invites:
            state.account_invites = state.account_invites.updated({p["invite_key"]: GONE})
    elif op.kind == account_invites.REDEEM:
        if p["invite_key"] in state.account_invites:
            state.account_invites = state.account_invites.updated({p["invite_key"]: GONE})
        state.accounts.redeem(p["account"], p["key"])
    elif op.kind == "invite.consume":
        if p["invite"] in state.consumed_invites:
            return  # a concurrent use of the invite came first: this one is void
        state.consumed_invites.add(p["invite"])
        state.members[p["node"]] = frozenset(p.get("roles", ["member"])) | {"member"}


def revokes(op: Op, auth: Authority) -> bool:
    """A removal, or roles set without admin for an admin (a demotion: node.roles, or node.admit
    of a node already admitted, both set its roles), judged in `auth`, the op's past."""
    if op.kind == "node.remove":
        return True
    return (op.kind in ("node.roles", "node.admit") and ADMIN not in op.payload.get("roles", ())
            and auth.is_admin(op.payload["node"]))


def _grants_admin(op: Op) -> str | None:
    if op.kind == "network.genesis":
        return op.author.hex()
    if op.kind in ("node.admit", "node.roles", "invite.consume") and ADMIN in op.payload.get(
            "roles", ()):
        return str(op.payload["node"])
    return None


@dataclass(frozen=True)
class Resolution:
    """What a set of authority ops amounts to: the authority, which of its ops stand (valid)
    and which are void, and the revocations (removals, demotions) that took effect, by the key
    of the node they revoke, in the order they were decided."""

    authority: Authority
    valid: AbstractSet[bytes]  # a frozenset, or (extended) a persistent set sharing its base's
    void: frozenset[bytes]
    revocations: dict[str, tuple[Op, ...]]
    settled: bool = True  # the rounds reached a fixed point (see resolve)
    # account key -> the account ops that revoked it (tenant_revocation.py); filled by the
    # context cache, which knows the causal pasts
    account_revocations: Mapping[str, tuple[Op, ...]] = field(default_factory=dict)


def resolve(ops: list[Op], past_of: Mapping[bytes, AbstractSet[bytes]],
            preds_of: Mapping[bytes, frozenset[bytes]] | None = None) -> Resolution:
    """The authority a causally closed set of authority ops gives; `past_of[id]` is the set of
    authority ops in that op's causal past. Pure: the same set gives the same result anywhere.

    1. In (HLC, id) order (a linear extension of the causal order), an op is valid when it is
       not voided (step 2) and its author may sign it given the *valid* ops of its causal past;
       of two valid uses of one invite the earlier stands; a use of a void invite is void.
    2. The valid revocations (removals; roles set without admin) are decided in order of their
       authors' seniority (the position of the op that first made them admin; the founder
       first), ties by (HLC, id). A decided
       revocation of X voids X's ops concurrent with it (neither in the other's causal past):
       all of them for a removal, those only an admin may sign for a demotion. A revocation
       already voided by a decided one is skipped, and a decided one is not voided by a later
       one: of two admins removing each other concurrently, the senior stands.
    3. Steps 1 and 2 repeat until the voided set no longer changes (bounded; the result is
       deterministic either way)."""
    order = sorted(ops, key=lambda o: o.order_key)
    by_author: dict[str, list[Op]] = {}
    for op in order:
        by_author.setdefault(op.author.hex(), []).append(op)
    voided: frozenset[bytes] = frozenset()
    settled = False
    for _round in range(len(order) + 2):
        valid, authority, revoking = _valid_ops(order, past_of, voided, preds_of)
        revocations, again = _revoke(order, by_author, past_of, valid, revoking)
        if again == voided:
            settled = True
            break
        voided = again
    ids = frozenset(op.id for op in order)
    return Resolution(authority, frozenset(valid), ids - valid, revocations, settled)


def extend(base: Resolution, op: Op) -> Resolution:
    """resolve(S + [op]) from base = resolve(S), when op's causal past is all of S (the usual
    case: an op that saw every authority op before it). Then op comes last in (HLC, id) order
    and is concurrent with nothing in S, so it voids nothing there and nothing voids it: only
    its own validity is new. Equal to resolving from scratch (tested), and O(members + log N):
    the fold and the valid set are persistent (layered.py), shared with the base.
    (account_revocations is extended by the context cache, contexts.py.)"""
    assert base.settled
    auth = base.authority
    # every op of S is valid or void, so an invite of S stands exactly when it is not void
    if not _allowed(op, auth, lambda invite: invite not in base.void, auth.consumed_invites):
        return Resolution(auth, base.valid, base.void | {op.id}, base.revocations)
    after = auth.copy()
    _step(after, op)
    revocations = base.revocations
    if revokes(op, auth):
        target = op.payload["node"]
        revocations = {**revocations, target: (*revocations.get(target, ()), op)}
    return Resolution(after, LayeredSet.of(base.valid).plus(op.id), base.void, revocations)


def _valid_ops(order: list[Op], past_of: Mapping[bytes, AbstractSet[bytes]],
               voided: frozenset[bytes],
               preds_of: Mapping[bytes, frozenset[bytes]] | None = None,
               ) -> tuple[set[bytes], Authority, set[bytes]]:
    """The valid ops, their fold, and which of them are revocations.

    Each op is judged in the fold of the valid ops of its past. Usually that is every op
    before it (`running`). When it is not (a branch concurrent with another), and `preds_of`
    names the op's one predecessor p (the latest authority op of its past), its past is p and
    p's past, so its fold is p's fold stepped with p: kept per op in `after`, which makes a
    long concurrent branch cost O(its length) instead of a fold per op."""
    valid: set[bytes] = set()
    revoking: set[bytes] = set()
    running = Authority()  # the fold of every valid op so far (never mutated: each is kept)
    folds: dict[frozenset[bytes], Authority] = {}
    after: dict[bytes, Authority] = {}  # op -> the fold of the valid ops at or below it
    present = {op.id: op for op in order}
    used_invites: set[str] = set()
    for position, op in enumerate(order):
        past = past_of.get(op.id, frozenset())
        auth: Authority | None = None
        # Its past is among the ops before it (HLC rises along causal edges): when it has as
        # many as there are before it, it saw every op before it, so every valid one.
        if len(past) == position:
            auth = running  # the usual case, without building the set
        elif preds_of is not None and len(preds := preds_of.get(op.id, ())) == 1:
            auth = after.get(next(iter(preds)))
        if op.id in voided:
            if auth is not None and preds_of is not None:
                after[op.id] = auth
            continue
        if auth is None:
            if len(valid_past := frozenset(p for p in past if p in valid)) == len(valid):
                auth = running
            else:
                auth = folds.get(valid_past) or folds.setdefault(
                    valid_past, fold_authority([present[i] for i in valid_past]))
        if not _allowed(op, auth, lambda invite: invite not in present or invite in valid,
                        used_invites):
            if preds_of is not None:
                after[op.id] = auth
            continue
        valid.add(op.id)
        if revokes(op, auth):
            revoking.add(op.id)
        if op.kind == "invite.consume":
            used_invites.add(op.payload["invite"])
        elif op.kind == account_invites.REDEEM:
            used_invites.add(account_invites.used_tag(op))
        stepped = _stepped(auth, op)
        running = stepped if auth is running else _stepped(running, op)
        if preds_of is not None:
            after[op.id] = stepped
    return valid, running, revoking


def _stepped(auth: Authority, op: Op) -> Authority:
    out = auth.copy()
    _step(out, op)
    return out


def _allowed(op: Op, auth: Authority, invite_stands: Callable[[bytes], bool],
             used_invites: set[str]) -> bool:
    """Whether `op`'s author may sign it in `auth`; `invite_stands(id)`: whether the invite
    an invite.consume uses is absent or valid (a use of a void invite is void)."""
    if op.kind == "network.genesis":
        return True
    if op.kind in ADMIN_KINDS:
        return auth.is_admin(op.author.hex())
    if op.kind == account_invites.REDEEM:
        return account_invites.redeem_stands(op, auth, used_invites)
    if op.kind == "invite.consume":
        invite = op.payload["invite"]
        if invite in used_invites:
            return False  # an earlier use (by HLC, id) stands
        return invite_stands(bytes.fromhex(invite))
    return True


def _revoke(order: list[Op], by_author: dict[str, list[Op]],
            past_of: Mapping[bytes, AbstractSet[bytes]],
            valid: set[bytes],
            revoking: set[bytes]) -> tuple[dict[str, tuple[Op, ...]], frozenset[bytes]]:
    seniority: dict[str, int] = {}
    for rank, op in enumerate(order):
        if op.id in valid and (granted := _grants_admin(op)) is not None:
            seniority.setdefault(granted, rank)
    junior = len(order)
    candidates = sorted((op for op in order if op.id in revoking),
                        key=lambda o: (seniority.get(o.author.hex(), junior), o.order_key))
    voided: set[bytes] = set()
    decided: set[bytes] = set()
    revocations: dict[str, list[Op]] = {}
    for rev in candidates:
        if rev.id in voided:
            continue
        decided.add(rev.id)
        target = rev.payload["node"]
        revocations.setdefault(target, []).append(rev)
        for op in by_author.get(target, ()):
            if op.id in decided or op.id == rev.id:
                continue
            if rev.id in past_of.get(op.id, ()) or op.id in past_of.get(rev.id, ()):
                continue  # not concurrent: it saw the revocation, or the revocation saw it
            if rev.kind == "node.remove" or op.kind in ADMIN_KINDS:
                voided.add(op.id)
    return {k: tuple(v) for k, v in revocations.items()}, frozenset(voided)
