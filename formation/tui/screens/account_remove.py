"""Confirm, then remove an account (an admin's `account.remove`, what `formation account rm`
writes): the dialog names it and says what goes; y removes it, n or esc keeps it. Dismissed
with a line saying what was done, None when kept."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from formation.api import state_models, state_routes
from formation.errors import FormationError
from formation.tui.account_rows import AccountRow
from formation.tui.console_app import console_app
from formation.tui.join_flow import reason


class AccountRemoveScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("y", "remove", "Remove"), Binding("n", "keep", "Keep"),
                Binding("escape", "keep", "Keep")]

    def __init__(self, row: AccountRow) -> None:
        super().__init__()
        self.row = row
        self.busy = False

    def compose(self) -> ComposeResult:
        used = self.row.usage.get("instances", 0)
        with Vertical(id="account-remove-box", classes="dialog"):
            yield Label(f"[b]Remove account {self.row.name}[/b] "
                        f"({len(self.row.keys)} key(s))?")
            yield Static(f"Its keys are refused from then on, on every node that knows the "
                         f"removal. Its {used} instance(s) stay until an admin deletes them."
                         "\n\ny: remove it · n or esc: keep it", id="account-remove-state")

    @work(exclusive=True, group="account-remove", exit_on_error=False)
    async def action_remove(self) -> None:
        if self.busy:
            return
        state = self.query_one("#account-remove-state", Static)
        link = console_app(self).link
        if link is None:
            state.add_class("-error")
            state.update("[b]not removed[/b]: not connected to a node yet\n\nesc: close")
            return
        self.busy = True
        state.update(f"removing {self.row.name}…")
        try:
            op = await link.call(state_routes.state_append, state_models.AppendRequest(
                kind="account.remove", payload={"name": self.row.name}))
        except FormationError as exc:
            self.busy = False
            state.add_class("-error")
            state.update(f"[b]not removed[/b]: {reason(exc)}\n\nesc: close")
            return
        self.dismiss(f"removed account {self.row.name}: op {op.id[:12]} replicates to every "
                     "node")

    def action_keep(self) -> None:
        if not self.busy:
            self.dismiss(None)
