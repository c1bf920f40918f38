"""This node in four lines: name, id, version, uptime, role and mesh address, resources, API."""

from __future__ import annotations

from textual.widgets import Static

from formation.api.models import NodeStatus
from formation.tui.presenter import duration


def summary_text(status: NodeStatus | None) -> str:
    if status is None:
        return "waiting for the node…"
    res = status.resources
    return "\n".join((
        f"[b]{status.name}[/b]  id {status.identity.node_id}",
        f"formation {status.version} · up {duration(status.uptime_s)}",
        # The node API has no network membership yet: say so instead of guessing.
        "role: none (not in a network) · mesh: none",
        f"{res.cpus} CPUs · mem {res.memory_available_mb}/{res.memory_total_mb} MiB free",
        f"disk {res.disk_free_gb}/{res.disk_total_gb} GB free · load {res.load_1m:.2f}",
        "API " + " ".join(status.listen),
    ))


class NodeSummary(Static):
    def on_mount(self) -> None:
        self.watch(self.app, "node_status", self.show, init=True)

    def show(self, status: NodeStatus | None) -> None:
        text = summary_text(status)
        if text != getattr(self, "shown", None):
            self.shown = text
            self.update(text, layout=False)  # fixed height: no relayout of the screen
