"""This node in six lines: name, id, version, uptime, role and mesh address, resources, API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import Static

from formation.tui.console_app import console_app
from formation.tui.network_rows import mesh_address, role_of
from formation.tui.presenter import duration

if TYPE_CHECKING:
    from formation.api.models import NodeStatus
    from formation.tui.network import NetworkSnapshot


def membership_line(status: NodeStatus, net: NetworkSnapshot | None) -> str:
    if net is None:
        return "role: … · mesh: …"
    if net.network is None and "state view network" in net.errors:
        return f"role: unknown ({net.errors['state view network']})"
    return f"role: {role_of(net, status.identity)} · mesh: {mesh_address(net, status.identity)}"


def summary_text(status: NodeStatus | None, net: NetworkSnapshot | None = None) -> str:
    if status is None:
        return "waiting for the node…"
    res = status.resources
    return "\n".join((
        f"[b]{status.name}[/b]  id {status.identity.node_id}",
        f"formation {status.version} · up {duration(status.uptime_s)}",
        membership_line(status, net),
        f"{res.cpus} CPUs · mem {res.memory_available_mb}/{res.memory_total_mb} MiB free",
        f"disk {res.disk_free_gb}/{res.disk_total_gb} GB free · load {res.load_1m:.2f}",
        "API " + " ".join(status.listen),
    ))


class NodeSummary(Static):
    def on_mount(self) -> None:
        self.watch(self.app, "network", lambda _: self.show(), init=False)
        self.watch(self.app, "node_status", lambda _: self.show(), init=True)

    def show(self) -> None:
        app = console_app(self)
        text = summary_text(app.node_status, app.network)
        if text != getattr(self, "shown", None):
            self.shown = text
            self.update(text, layout=False)  # fixed height: no relayout of the screen
