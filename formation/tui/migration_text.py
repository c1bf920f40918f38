"""The line the instance detail shows while an instance moves, from the node's `vm` migration
events (node/vmm/migration.py publishes them on the source's node; the target's node says
when it runs the guest). Pure, so it is tested without a terminal."""

from __future__ import annotations

from typing import Any

MIB = 1024 * 1024


def _mib(n: Any) -> str:
    return f"{int(n or 0) / MIB:.1f} MiB"


def migration_text(kind: str, data: dict[str, Any]) -> str | None:
    """One line for a migration event; None for other events."""
    if kind == "migration_started":
        return f"migrating live to {str(data.get('to') or '?')[:12]}: starting"
    if kind == "migration_incoming":
        return f"migration: this node waits for the guest on {data.get('listen', '?')}"
    if kind == "migration_progress":
        total = int(data.get("total_bytes") or 0)
        sent = int(data.get("transferred_bytes") or 0)
        share = f" ({min(100, 100 * sent // total)}%)" if total else ""
        text = (f"migrating: {_mib(sent)} sent{share}, {_mib(data.get('remaining_bytes'))} "
                f"left, guest dirtying {int(data.get('dirty_rate_pps') or 0)} pages/s")
        if data.get("downtime_ms") is not None:
            text += f", downtime {int(data['downtime_ms'])} ms"
        return text
    if kind == "migration_done":
        return "migration done: the target runs the guest"
    if kind == "migration_failed":
        return f"migration failed: {data.get('reason', '')} (it keeps running where it was)"
    return None
