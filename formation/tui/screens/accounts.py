"""Accounts (tenants), for admins: every account of the network with its keys (short), roles,
quotas and what its instances use (used/quota). Live like the Peers screen: it shows the app's
network read, which includes the accounts and instances views and is read again after every
state event. Keys mirror `formation account quota|rm`: m sets the selected account's quotas,
x removes it after a confirmation; enter shows its instances. m and x write an op as this
node, so they work only on the node's own console (the unix socket) of a network admin;
elsewhere the node's refusal shows in one line, and the list still shows what the node let us
read."""

from __future__ import annotations

import asyncio

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from formation.tui.account_rows import (
    COLUMNS,
    PRIORITY,
    AccountRow,
    account_rows,
    count_text,
    role_note,
    selected_text,
)
from formation.tui.column_fit import refit_table
from formation.tui.console_app import console_app
from formation.tui.network import NetworkSnapshot
from formation.tui.network_rows import role_of
from formation.tui.screens.base import ConsoleScreen

NO_NETWORK = "This node is in no network, so there are no accounts (press e to found one)."


class AccountsScreen(ConsoleScreen):
    TITLE_TEXT = "accounts"
    BINDINGS = [Binding("m", "quota", "Quotas"), Binding("x", "remove", "Remove"),
                Binding("delete", "remove", "Remove", show=False),
                Binding("enter", "instances", "Its instances", show=False)]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[AccountRow] = []
        self.shown_columns: list[int] = []
        self._shown: list[tuple[str, ...]] | None = None
        self.notice = ""
        self.notice_error = False
        self._built_from: NetworkSnapshot | None = None  # the read self.rows were made from
        self._selected_name: str | None = None  # the account the operator chose (m and x)

    def compose_body(self) -> ComposeResult:
        yield Static("reading the accounts…", id="accounts-state")
        yield DataTable(id="accounts-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="account-selected")

    def on_mount(self) -> None:
        super().on_mount()
        self._set_columns(self.app.size.width)
        self.watch(self.app, "network", self._network_read, init=True)

    def on_screen_resume(self) -> None:
        console_app(self).read_network()

    def on_resize(self, event: events.Resize) -> None:
        self._set_columns(event.size.width)
        self._shown = None
        self.show()

    def _network_read(self, _net: NetworkSnapshot | None) -> None:
        self.rebuild()

    @work(group="accounts-rows", exclusive=True, exit_on_error=False)
    async def rebuild(self) -> None:
        """The rows of the newest network read, made off the loop: summing every instance of
        every account is a pass over the whole instances view (thousands of accounts must not
        stall the console's keys). A newer read replaces a build still running."""
        net = console_app(self).network
        if net is not None and net is not self._built_from:
            self.rows = await asyncio.to_thread(account_rows, net.view("accounts"),
                                                net.view("instances"))
            self._built_from = net
        elif net is None:
            self.rows, self._built_from = [], None
        self.show()

    def _set_columns(self, width: int) -> None:
        table = self.query_one("#accounts-table", DataTable)
        wanted = refit_table(table, COLUMNS, PRIORITY, width, self.shown_columns)
        if wanted is not None:
            self.shown_columns = wanted

    def state_text(self, net: NetworkSnapshot | None) -> tuple[str, bool]:
        """The line(s) above the table and whether they say something went wrong."""
        if net is None:
            return "reading the accounts…", False
        why = net.errors.get("state view accounts")
        if net.network is None and "state view network" not in net.errors:
            return NO_NETWORK, False
        if why is not None:
            return f"cannot read the accounts: {why}", True
        app = console_app(self)
        status = app.node_status
        role = role_of(net, status.identity) if status is not None else None
        lines = [count_text(self.rows)]
        note = role_note(role, app.link is not None and app.link.address is not None)
        if note:
            lines.append(note)
        if self.notice:
            lines.append(self.notice)
        return "\n".join(lines), self.notice_error

    def show(self) -> None:
        """Draws self.rows (made by rebuild); the table is left alone when its rows are the
        same, so the cursor stays."""
        net = self._built_from
        selected = self._selected_name
        text, error = self.state_text(net)
        state = self.query_one("#accounts-state", Static)
        state.set_class(error, "-error")
        state.update(text)
        rows = [tuple(r.cells()[i] for i in self.shown_columns) for r in self.rows]
        if rows != self._shown:
            self._shown = rows
            table = self.query_one("#accounts-table", DataTable)
            table.clear()
            for row in rows:
                table.add_row(*row)
            names = [r.name for r in self.rows]
            if selected in names:  # the cursor keeps its account
                table.move_cursor(row=names.index(selected), animate=False)
        self._show_selected()

    def on_data_table_row_highlighted(self, _: DataTable.RowHighlighted) -> None:
        row = self.selected_row()
        if row is not None:
            self._selected_name = row.name
        self._show_selected()

    def _show_selected(self) -> None:
        self.query_one("#account-selected", Static).update(selected_text(self.selected_row()))

    def selected_row(self) -> AccountRow | None:
        """The account under the table's cursor (what m and x act on)."""
        if not self.is_mounted:
            return None
        cursor = self.query_one("#accounts-table", DataTable).cursor_row
        return self.rows[cursor] if 0 <= cursor < len(self.rows) else None

    # actions -----------------------------------------------------------------------------------
    def acted(self, text: str, error: bool = False) -> None:
        self.notice = f"not done: {text}" if error else text
        self.notice_error = error
        self.show()
        if not error:
            console_app(self).read_network()

    def _chosen(self) -> AccountRow | None:
        row = self.selected_row()
        if row is None:
            self.acted("no account selected: ↑↓ to choose one", error=True)
        return row

    async def action_instances(self) -> None:
        """The instances screen, filtered to the selected account's (f there cycles on)."""
        row = self._chosen()
        if row is None:
            return
        app = console_app(self)
        await app.switch_mode("instances")
        from formation.tui.screens.instances import InstancesScreen

        if isinstance(app.screen, InstancesScreen):
            app.screen.filter_to(row.name)

    async def on_data_table_row_selected(self, _: DataTable.RowSelected) -> None:
        await self.action_instances()

    def action_quota(self) -> None:
        row = self._chosen()
        if row is None:
            return
        from formation.tui.screens.account_quota import AccountQuotaScreen

        self.app.push_screen(AccountQuotaScreen(row), self._done)

    def action_remove(self) -> None:
        row = self._chosen()
        if row is None:
            return
        from formation.tui.screens.account_remove import AccountRemoveScreen

        self.app.push_screen(AccountRemoveScreen(row), self._done)

    def _done(self, outcome: str | None) -> None:
        if outcome:
            self.acted(outcome)
