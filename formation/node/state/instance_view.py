"""What the instances view says about one instance's current run. Statuses are kept per
placement (`observed@<placement op>`): a node whose placement was superseded (it was declared
dead, or the instance migrated) may still write a status before it hears of the new placement,
and that must not hide what the node holding the instance now reports."""

from __future__ import annotations

from typing import Any


def observed_key(placement: str) -> str:
    return f"observed@{placement}"


def current_observed(inst: dict[str, Any]) -> dict[str, Any]:
    """The status written under the instance's current placement, or {} (none yet)."""
    placement = inst.get("placement_op")
    found = inst.get(observed_key(placement)) if isinstance(placement, str) else None
    return found if isinstance(found, dict) else {}
