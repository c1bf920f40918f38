"""What the Instances screen shows of each instance, as plain text: pure functions, so the
columns that fit 80x24, the truncation of long names and the uptime are tested without a
terminal. Uptime ticks between reads: the node's `uptime_s` plus the time since it was read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from formation.tui.presenter import duration

if TYPE_CHECKING:
    from formation.api.vm_models import Instance, StatusChange

COLUMNS = (("name", 16), ("node", 12), ("state", 8), ("address", 15), ("vCPU", 4),
           ("memory", 6), ("uptime", 8), ("owner", 9))
# What a narrow terminal keeps (column_fit.py): at 80 columns who owns an instance stays (the
# tenant's view of the network) with memory; uptime and the vCPU count go (details has them).
PRIORITY = ("name", "state", "owner", "address", "node", "memory", "uptime", "vCPU")
NODE_OWNED = "@nodes"  # the owner filter for work no account owns: no account name has "@"
STATE_STYLE = {"running": "green", "failed": "red", "pending": "yellow", "stopped": "dim"}
IMPORT_HINT = ("formation image import KERNEL [--initrd FILE] [--disk FILE] --name NAME")
EMPTY_TEXT = ("No instances in this network yet. An instance boots from an image: import one "
              f"first on a node (`{IMPORT_HINT}`), then press + here to create an instance "
              "from it.")
KEYS_TEXT = "↑↓ choose · enter details"


def truncate(text: str, width: int) -> str:
    """At most `width` cells; a cut shows as a trailing ellipsis."""
    return text if len(text) <= width else text[:max(0, width - 1)] + "…"


def memory_text(mb: int) -> str:
    """512M, 1G, 1.5G, 256G: short enough for a 6-cell column."""
    if mb < 1024:
        return f"{mb}M"
    gib = mb / 1024
    return f"{gib:.0f}G" if gib == int(gib) or gib >= 100 else f"{gib:.1f}G"


def node_text(instance: Instance) -> str:
    if instance.node_name:
        return instance.node_name
    if instance.node:
        return instance.node[:12]
    return "-"


def owner_text(instance: Instance, node_names: Mapping[str, str] | None = None) -> str:
    """The owning account's name; for node-owned work '@' and the node that wrote it."""
    if instance.account:
        return instance.account
    name = (node_names or {}).get(instance.owner)
    return "@" + (name or instance.owner[:8] or "?")


def owner_choices(instances: Sequence[Instance], accounts: Sequence[str] = ()) -> list[str]:
    """What the owner filter cycles through after 'all': every account (those owning an
    instance and those in `accounts`), by name, then node-owned work when there is any."""
    names = sorted({*accounts, *(i.account for i in instances if i.account)})
    if any(i.account is None for i in instances):
        names.append(NODE_OWNED)
    return names


def next_owner(current: str | None, choices: Sequence[str]) -> str | None:
    """The filter after `current` (None: all): the next choice, then all again."""
    if current is None:
        return choices[0] if choices else None
    if current not in choices:
        return None
    at = choices.index(current)
    return choices[at + 1] if at + 1 < len(choices) else None


def owned_by(instance: Instance, owner: str | None) -> bool:
    """Whether the filter `owner` (None: all; NODE_OWNED: no account) keeps the instance."""
    if owner is None:
        return True
    if owner == NODE_OWNED:
        return instance.account is None
    return instance.account == owner


def filter_text(owner: str | None) -> str:
    if owner is None:
        return ""
    who = "nodes (no account)" if owner == NODE_OWNED else f"account {owner}"
    return f"owner: {who} · f: next owner"


def uptime_text(instance: Instance, elapsed_s: float = 0.0) -> str:
    """How long it has run, while it runs; the read's figure plus the time since the read."""
    if instance.state != "running" or instance.uptime_s is None:
        return "-"
    return duration(instance.uptime_s + max(0.0, elapsed_s))


def state_markup(state: str) -> str:
    style = STATE_STYLE.get(state)
    return f"[{style}]{state}[/]" if style else state


def instance_cells(instance: Instance, elapsed_s: float = 0.0,
                   node_names: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """One table row, in COLUMNS order, each cut to its column's width. `node_names` (node key
    -> name) names the node that wrote node-owned work."""
    cells = (instance.name, node_text(instance), instance.state, instance.address or "-",
             str(instance.vcpus), memory_text(instance.memory_mb),
             uptime_text(instance, elapsed_s), owner_text(instance, node_names))
    return tuple(truncate(c, w) for c, (_, w) in zip(cells, COLUMNS, strict=True))


def count_text(instances: list[Instance]) -> str:
    if not instances:
        return EMPTY_TEXT
    running = sum(1 for i in instances if i.state == "running")
    return f"{len(instances)} instance(s), {running} running · {KEYS_TEXT}"


def at_odds(instance: Instance) -> bool:
    """The instance is not (yet) as desired: worth saying beside its state."""
    if instance.desired == "running":
        return instance.state in ("stopping", "stopped")
    return instance.state in ("booting", "running")


def selected_text(instance: Instance | None) -> str:
    """The line under the table: the highlighted instance's state and why (pending, failed)."""
    if instance is None:
        return ""
    text = f"{instance.name}: {instance.state}"
    if at_odds(instance):
        text += f" (desired {instance.desired})"
    if instance.reason:
        text += f" · {instance.reason}"
    return text


def detail_text(instance: Instance, elapsed_s: float = 0.0) -> str:
    """The detail view's fields, a few short lines (fits 80 columns)."""
    image = instance.image_name or instance.image[:12]
    placed = node_text(instance) if instance.node else "not placed"
    owner = f"account {instance.account}" if instance.account else f"node {instance.owner[:12]}"
    lines = [
        f"[b]{truncate(instance.name, 40)}[/b] · {state_markup(instance.state)}"
        + (f" (desired {instance.desired})" if at_odds(instance) else "")
        + f" · up {uptime_text(instance, elapsed_s)}",
        f"id {instance.id[:16]} · image {image} · node {placed} · {instance.backend or '-'}"
        + (f" · {instance.address}" if instance.address else ""),
        f"{instance.vcpus} vCPU · {memory_text(instance.memory_mb)} memory · "
        f"{instance.disk_gb} GB disk" + (f" · {instance.gpus} GPU" if instance.gpus else "")
        + ("" if instance.confidential == "none" else f" · {instance.confidential}")
        + f" · owner {owner}",
    ]
    if instance.reason:
        lines.append(f"reason: {instance.reason}")
    return "\n".join(lines)


def history_line(change: StatusChange, clock: str) -> str:
    reason = f" · {change.reason}" if change.reason else ""
    return f"{clock} {change.state}{reason}"
