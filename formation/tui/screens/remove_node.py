"""Confirm, then remove a node from the network (an admin writes `node.remove`). The dialog
names the node; y removes it, n or esc leaves it."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from formation.api import join_routes
from formation.errors import FormationError
from formation.tui.console_app import console_app
from formation.tui.join_flow import reason


class RemoveNodeScreen(ModalScreen[bool]):
    BINDINGS = [Binding("y", "remove", "Remove"), Binding("n", "close", "Keep"),
                Binding("escape", "close", "Close")]

    def __init__(self, node_id: str, name: str) -> None:
        super().__init__()
        self.node_id = node_id
        self.name_shown = name or "?"
        self.removed = False

    def compose(self) -> ComposeResult:
        with Vertical(id="remove-box", classes="dialog"):
            yield Label(f"[b]Remove node {self.name_shown}[/b] ({self.node_id}) from the "
                        "network?")
            yield Static("It loses its roles on every replica: its requests and heartbeats are "
                         "no longer accepted and the mesh drops it. It can come back only with a "
                         "new invite.\n\ny: remove it · n or esc: keep it", id="remove-state")

    @work(exclusive=True, group="remove")
    async def action_remove(self) -> None:
        if self.removed:
            return
        state = self.query_one("#remove-state", Static)
        link = console_app(self).link
        if link is None:
            state.add_class("-error")
            state.update("[b]not removed[/b]: not connected to a node yet\n\nesc: close")
            return
        state.update(f"removing {self.name_shown}…")
        try:
            result = await link.call(join_routes.node_remove, id=self.node_id)
        except FormationError as exc:
            state.add_class("-error")
            state.update(f"[b]not removed[/b]: {reason(exc)}\n\nesc: close")
            return
        self.removed = True
        state.remove_class("-error")
        state.update(f"removed {result.name or self.name_shown} ({result.id}): op "
                     f"{result.op[:12]} replicates to every node.\n\nesc: close")
        console_app(self).read_network()

    def action_close(self) -> None:
        self.dismiss(self.removed)
