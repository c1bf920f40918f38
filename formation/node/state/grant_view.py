"""The `grants` view: one register per grant (keyed by its op id), with `revoked` set by the
first revocation. A revocation names its grant, so it is always ordered after it (HLC rises
along causal edges): last-writer-wins never lets a grant's own fields undo its revocation.
Whether a grant is live also depends on time (`until_ms`): readers judge that at their own
clock, for display only; the rules judge each use at the use's own HLC."""

from __future__ import annotations

from typing import Any

Effect = tuple[Any, ...]


def set_effects(p: dict[str, Any], author: str, oid: str) -> list[Effect]:
    target = ("on", p["on"]) if "on" in p else ("prefix", p["prefix"])
    return [("lww", "grants", oid, "account", p["account"]),
            ("lww", "grants", oid, "grantee", p["grantee"]),
            ("lww", "grants", oid, "actions", p["actions"]),
            ("lww", "grants", oid, target[0], target[1]),
            ("lww", "grants", oid, "until_ms", p["until_ms"]),
            ("lww", "grants", oid, "granted_by", author),
            ("lww", "grants", oid, "revoked", False)]


def revoke_effects(p: dict[str, Any], author: str, oid: str) -> list[Effect]:
    return [("fww", "grants", p["grant"], "revoked_by", author),
            ("fww", "grants", p["grant"], "revoked_op", oid),
            ("lww", "grants", p["grant"], "revoked", True)]


def live(grant: dict[str, Any], now_ms: int) -> bool:
    """Whether a grants-view record allows anything at `now_ms` (for listings)."""
    return not grant.get("revoked") and int(grant.get("until_ms", 0)) > now_ms
