"""Who may do what, as seen from an op's causal past.

Kleppmann's rule: an op's validity may depend only on its causal history, so every correct
replica reaches the same verdict. Membership and roles change only through a few *authority ops*
(genesis, admit, remove, roles, invite consumption). Each accepted op carries the set of
authority ops in its causal past (its *context*); folding that set in (HLC, id) order gives the
roles the op is judged against. Contexts are shared between ops and cached, because they change
only when an authority op is added or branches with different authority ops merge."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from formation.node.state.op import Op

AUTHORITY_KINDS = frozenset({
    "network.genesis", "node.admit", "node.remove", "node.roles", "invite.consume",
})
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

    def is_member(self, key_hex: str) -> bool:
        return key_hex in self.members

    def is_admin(self, key_hex: str) -> bool:
        return ADMIN in self.members.get(key_hex, ())


def fold_authority(ops: list[Op]) -> Authority:
    """Authority ops in (HLC, id) order. An invite is single-use: when two uses of one invite
    are concurrent (neither saw the other), both are valid in their own causal past, and in any
    context holding both the earlier by (HLC, id) admits its node and the other is void."""
    state = Authority()
    for op in sorted(ops, key=lambda o: o.order_key):
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
        elif op.kind == "invite.consume":
            if p["invite"] in state.consumed_invites:
                continue  # a concurrent use of the invite came first: this one is void
            state.consumed_invites.add(p["invite"])
            state.members[p["node"]] = frozenset(p.get("roles", ["member"])) | {"member"}
    return state


class ContextCache:
    """Interns contexts (frozensets of authority op ids) to small integers and caches their
    folds. The store persists the mapping so that a restart does not refold the log."""

    def __init__(self) -> None:
        self.by_id: dict[int, frozenset[bytes]] = {}
        self.ids: dict[frozenset[bytes], int] = {}
        self.authority_ops: dict[bytes, Op] = {}
        self._folds: dict[int, Authority] = {}
        self.new_contexts: list[tuple[int, frozenset[bytes]]] = []

    def load(self, ctx_id: int, members: frozenset[bytes]) -> None:
        self.by_id[ctx_id] = members
        self.ids[members] = ctx_id

    def intern(self, members: frozenset[bytes]) -> int:
        found = self.ids.get(members)
        if found is not None:
            return found
        ctx_id = len(self.by_id) + 1
        self.load(ctx_id, members)
        self.new_contexts.append((ctx_id, members))
        return ctx_id

    def past_context(self, dep_contexts: list[int]) -> int:
        """The context an op is judged in: the union of its dependencies' contexts."""
        unique = set(dep_contexts)
        if len(unique) == 1:
            return next(iter(unique))
        return self.intern(frozenset().union(*(self.by_id[c] for c in unique)))

    def own_context(self, past: int | None, op: Op) -> int:
        """The context of an accepted op: its past plus itself when it is an authority op."""
        if op.kind not in AUTHORITY_KINDS:
            assert past is not None
            return past
        self.authority_ops[op.id] = op
        members = self.by_id[past] if past is not None else frozenset()
        return self.intern(members | {op.id})

    def authority(self, ctx_id: int) -> Authority:
        found = self._folds.get(ctx_id)
        if found is None:
            if len(self._folds) > 4096:
                self._folds.clear()
            members = self.by_id.get(ctx_id, frozenset())
            found = fold_authority([self.authority_ops[i] for i in members])
            self._folds[ctx_id] = found
        return found

    def rollback(self) -> None:
        """Forget contexts created by a batch whose transaction failed."""
        for ctx_id, members in self.new_contexts:
            self.by_id.pop(ctx_id, None)
            self.ids.pop(members, None)
            self._folds.pop(ctx_id, None)
        self.new_contexts.clear()
