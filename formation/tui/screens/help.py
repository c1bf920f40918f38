"""Every key of the console and what it does, built from the same list as the bindings."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from formation.tui.actions import ACTIONS, key_label
from formation.tui.screens.base import ConsoleScreen

SCREEN_KEYS = (
    ("ctrl+p", "Command palette", "Search every action by name"),
    ("ctrl+s", "Save settings", "On the settings screen"),
    ("ctrl+r", "Reload settings", "On the settings and enrollment screens: read them again"),
    ("h / f / j", "Node / found / join",
     "On the enrollment screen: this node's fields, then found a network or join one"),
    ("y / r", "Copy / new token", "In the invite dialog: copy the token (OSC 52), make another"),
    ("a / x", "Approve / reject", "In the pending-joins dialog: decide on the selected host"),
    ("y / n", "Remove / keep", "In the remove-node dialog"),
    ("+ b h t x", "Instance keys",
     "On the instances screen and an instance's view: create, start, stop, restart, delete"),
    ("enter", "Instance details", "On the instances screen: its fields, history, serial log"),
    ("f", "Filter by owner", "On the instances screen: all, then each account, then nodes'"),
    ("m x enter", "Account keys", "On the accounts screen: quotas, remove (asks first); "
     "enter: its instances"),
    ("tab", "Next field", "Move between fields and tables (no mouse needed)"),
    ("f1", "Help", "This screen"),
)


class HelpScreen(ConsoleScreen):
    TITLE_TEXT = "help"

    def compose_body(self) -> ComposeResult:
        yield Static("Keys work everywhere except while typing in a field (tab leaves it).",
                     classes="prose")
        yield DataTable(id="keys", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one("#keys", DataTable)
        table.add_columns("key", "action", "what it does")
        for action in ACTIONS:
            table.add_row(key_label(action.key), action.title, action.help)
        for row in SCREEN_KEYS:
            table.add_row(*row)
