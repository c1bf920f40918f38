"""Routes: every hostname the network's edge nodes serve, its protocol and port, its account,
and the instances behind it with their health. Live: the app reads the routes with the network
(after each state event and every poll)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from formation.tui.console_app import console_app
from formation.tui.route_rows import COLUMNS, route_rows, routes_state_text
from formation.tui.screens.base import ConsoleScreen


class RoutesScreen(ConsoleScreen):
    TITLE_TEXT = "routes"
    _shown: list[tuple[str, ...]] | None = None

    def compose_body(self) -> ComposeResult:
        yield Static("reading the routes…", id="routes-state")
        yield DataTable(id="routes-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#routes-table", DataTable).add_columns(*COLUMNS)
        self.watch(self.app, "network", lambda _: self.show(), init=True)

    def show(self) -> None:
        net = console_app(self).network
        routes = net.routes if net is not None else None
        error = net.errors.get("routes") if net is not None else None
        self.query_one("#routes-state", Static).update(routes_state_text(routes, error))
        rows = route_rows(routes)
        if rows == self._shown:
            return
        self._shown = rows
        table = self.query_one("#routes-table", DataTable)
        table.clear()
        for row in rows:
            table.add_row(*row)
