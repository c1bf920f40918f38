"""This node at a glance: identity and role, the network, parts and capabilities, live host
graphs, and the events."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal

from formation.tui.screens.base import ConsoleScreen
from formation.tui.widgets.event_log import EventLog
from formation.tui.widgets.host_graphs import HostGraphs
from formation.tui.widgets.network_summary import NetworkSummary
from formation.tui.widgets.node_summary import NodeSummary
from formation.tui.widgets.parts_table import PartsTable


class DashboardScreen(ConsoleScreen):
    TITLE_TEXT = "dashboard"

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="top"):
            yield NodeSummary(id="summary")
            yield HostGraphs(id="graphs")
        yield NetworkSummary(id="network")
        yield EventLog(id="events")

    async def after_first_frame(self) -> None:
        """The parts table and the graphs' rows: 20 widgets the first frame need not wait for
        (they show nothing until the node answers)."""
        if not self.query(PartsTable):
            table = PartsTable(id="parts")
            await self.mount(table, before="#events")
            if self.focused is None:  # as the screen's auto-focus did when it was composed
                table.focus()
        await self.query_one(HostGraphs).mount_rows()
        await super().after_first_frame()
