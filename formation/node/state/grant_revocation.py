"""Whether a grantee's op sees a revocation of its grant (grant_rules.py).

A use is refused when a `grant.revoke` of its grant is in its causal past, on every replica
alike. The candidates are the revocations of that grant this replica holds (the tenant_ops
index of tenant_usage.py keeps a grant and its revocations under index_key(grant)); only those
ordered before the use (by HLC, id) can be in its past, and the log walk decides which are.
Usually there are none, and nothing is walked."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from formation.node.state.op import Op

InPast = Callable[[Op, dict[bytes, Op]], set[bytes]]


def index_key(grant_id_hex: str) -> str:
    """The tenant_ops `account` column of a grant's ops (no account name holds a ':')."""
    return f"grant:{grant_id_hex}"


def uses_key(grant_id_hex: str) -> str:
    """The tenant_ops `account` column of a grant's uses (grant_void.py reads them when a
    revocation comes; kept apart from index_key so a use's own check reads no other use)."""
    return f"uses:{grant_id_hex}"


def revoked_problem(use: Op, account_ops: Iterable[Op], in_past: InPast) -> str | None:
    """None, or the one-line refusal of `use` whose grant was revoked in its causal past."""
    grant = use.payload["grant"]
    wanted = {o.id: o for o in account_ops
              if o.kind == "grant.revoke" and o.payload.get("grant") == grant
              and o.order_key < use.order_key}
    if not wanted:
        return None
    seen = in_past(use, wanted)
    if not seen:
        return None
    first = min((wanted[i] for i in seen), key=lambda o: o.order_key)
    return f"payload.grant: revoked by op {first.id.hex()[:16]} (in this op's causal past)"
