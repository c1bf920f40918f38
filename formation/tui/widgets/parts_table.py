"""Each capability of the host and each part of the service, with its state and the reason."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.widgets import DataTable

from formation.tui.console_app import console_app

if TYPE_CHECKING:
    from formation.api.models import Health, NodeStatus


DETAIL_WIDTH = 160  # the table scrolls sideways for the longest reasons
MARKS = {True: "[green]ok[/]", False: "[red]no[/]", None: "…"}


def rows(status: NodeStatus | None, health: Health | None) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    if health is not None:
        for check in health.checks:
            found.append((f"service {check.name}", MARKS[check.ok], check.detail))
    if status is not None:
        caps = status.capabilities
        if caps.probed_at is None:
            found.append(("capabilities", MARKS[None], "probing the host"))
        for item in caps.items:
            detail = item.summary if item.ok else item.reason
            found.append((item.name, MARKS[item.ok], detail))
    return found


class PartsTable(DataTable):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        # Fixed widths: auto widths are measured on idle and a frame may show them half done.
        self.add_column("part", width=22)
        self.add_column("state", width=5)
        self.add_column("detail", width=DETAIL_WIDTH)
        self.watch(self.app, "node_health", lambda _: self.show(), init=False)
        self.watch(self.app, "node_status", lambda _: self.show(), init=True)

    def show(self) -> None:
        app = console_app(self)
        new = rows(app.node_status, app.node_health)
        if new == getattr(self, "_shown", None):
            return
        self._shown = new
        self.clear()
        for row in new:
            self.add_row(*row)
