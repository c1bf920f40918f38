"""What an account's instances use, from the instances view: one definition for the node's
tenant endpoint, `formation account show` and the console's Accounts screen, so the three never
disagree on what counts (a deleted instance does not; an instance without a figure counts 0)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SPEC_FIGURES = ("vcpus", "memory_mb", "disk_gb")
FIGURES = (*SPEC_FIGURES, "instances")  # the quota names, in the order people read them


def _figure(spec: Mapping[str, Any], name: str) -> int:
    value = spec.get(name, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def account_usage(instances: Iterable[Mapping[str, Any]], account: str) -> dict[str, int]:
    """vcpus, memory_mb, disk_gb and instances of `account`'s live instances in the view."""
    mine = [i for i in instances if i.get("account") == account and i.get("desired") != "deleted"]
    out = {f: sum(_figure(i.get("spec") or {}, f) for i in mine) for f in SPEC_FIGURES}
    out["instances"] = len(mine)
    return out


def usage_by_account(instances: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Every account that owns a live instance in the view -> its usage, in one pass over the
    view (a console redraws this on every state change: 10,000 accounts must not cost 10,000
    passes)."""
    out: dict[str, dict[str, int]] = {}
    for inst in instances:
        account = inst.get("account")
        if not isinstance(account, str) or inst.get("desired") == "deleted":
            continue
        used = out.setdefault(account, dict.fromkeys(FIGURES, 0))
        spec = inst.get("spec") or {}
        for name in SPEC_FIGURES:
            used[name] += _figure(spec, name)
        used["instances"] += 1
    return dict(sorted(out.items()))
