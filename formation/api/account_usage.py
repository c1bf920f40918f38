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
    """Every account that owns an instance in the view -> its usage (one pass per account)."""
    listed = list(instances)
    names = {i["account"] for i in listed if isinstance(i.get("account"), str)}
    return {name: account_usage(listed, name) for name in sorted(names)}
