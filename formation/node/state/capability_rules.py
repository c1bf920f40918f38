"""Node capabilities: what a node is asked to do beyond running instances (`edge`: run the
proxy engine for the network's routes; `builder`: build workload images for others).

`node.capabilities` {node, capabilities} is signed by a network admin and names a current
member. It is NOT an authority op (authority.py): it changes nobody's right to sign anything,
so it stays out of contexts and revocation's seniority; it is a plain last-writer-wins register
on the node's record in the nodes view (views.py). A member node may not set its own or
another's capabilities, and an account's key may not either (tenant_rules.TENANT_KINDS does not
list it, and no grant covers it: grant_rules.USE_KINDS holds only instance ops).

Each check returns None or (reason, message), like tenant_rules.py; rules.py raises."""

from __future__ import annotations

from typing import Any

from formation.node.state.authority import Authority
from formation.node.state.op import Op

KIND = "node.capabilities"
CAPABILITIES = ("builder", "edge")  # sorted: the order a view and the CLI show them in
EDGE, BUILDER = "edge", "builder"
Problem = tuple[str, str] | None


def is_capabilities(value: Any) -> bool:
    """A list of distinct known capabilities (empty: none)."""
    return (isinstance(value, list) and all(c in CAPABILITIES for c in value)
            and len(set(value)) == len(value))


def problem(op: Op, auth: Authority, author: str) -> Problem:
    """Why `op` (a node.capabilities op by `author`) is refused, or None."""
    p = op.payload
    extra = set(p) - {"node", "capabilities"}
    if extra:
        return ("invalid", f"payload.{sorted(extra)[0]}: not a field of this kind")
    node = p.get("node")
    if not (isinstance(node, str) and len(node) == 64
            and all(c in "0123456789abcdef" for c in node)):
        return ("invalid", "payload.node: expected a node's Ed25519 key, 64 hex")
    if not is_capabilities(p.get("capabilities")):
        return ("invalid", "payload.capabilities: expected a list of distinct capabilities "
                f"from {', '.join(CAPABILITIES)}")
    if not auth.is_admin(author):
        return ("unauthorized", f"{KIND}: only a network admin may do this")
    if not auth.is_member(node):
        return ("invalid", f"payload.node: {node[:16]} is not a member of the network")
    return None


def effects(op: Op) -> list[tuple[Any, ...]]:
    """The node's `capabilities` register, sorted so equal sets read alike, and the op that
    set it (`capabilities_op`: an edge names it in its cert.set ops, cert_rules.py)."""
    node = op.payload["node"]
    return [("lww", "nodes", node, "capabilities", sorted(op.payload["capabilities"])),
            ("lww", "nodes", node, "capabilities_op", op.id.hex())]


def cleared(node: str) -> list[tuple[Any, ...]]:
    """A node.remove's effect on the register: a node admitted again must be given its
    capabilities anew (the later write by (HLC, id) wins, as for any register)."""
    return [("lww", "nodes", node, "capabilities", [])]


def of(node: dict[str, Any]) -> list[str]:
    """A nodes-view record's capabilities (none when never set)."""
    caps = node.get("capabilities")
    return list(caps) if isinstance(caps, list) else []
