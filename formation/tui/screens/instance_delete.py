"""Confirm, then delete an instance: the dialog names it and says what goes (the VM and its
disk); y deletes it, n or esc keeps it. Dismissed with the instance's name once deleted, None
when kept."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from formation.api import vm_routes
from formation.api.vm_models import Instance
from formation.errors import FormationError
from formation.tui.console_app import console_app
from formation.tui.instance_rows import node_text, truncate
from formation.tui.join_flow import reason


class InstanceDeleteScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("y", "delete", "Delete"), Binding("n", "keep", "Keep"),
                Binding("escape", "keep", "Keep")]

    def __init__(self, instance: Instance) -> None:
        super().__init__()
        self.instance = instance
        self.busy = False

    def compose(self) -> ComposeResult:
        i = self.instance
        with Vertical(id="delete-box", classes="dialog"):
            yield Label(f"[b]Delete instance {truncate(i.name, 40)}[/b] ({i.id[:12]})?")
            yield Static(f"It is {i.state} on {node_text(i)}. Its node ends the VM and removes "
                         "its disk; this cannot be undone.\n\ny: delete it · n or esc: keep it",
                         id="delete-state")

    @work(exclusive=True, group="delete", exit_on_error=False)
    async def action_delete(self) -> None:
        if self.busy:
            return
        state = self.query_one("#delete-state", Static)
        link = console_app(self).link
        if link is None:
            state.add_class("-error")
            state.update("[b]not deleted[/b]: not connected to a node yet\n\nesc: close")
            return
        self.busy = True
        state.update(f"deleting {self.instance.name}…")
        try:
            await link.call(vm_routes.vm_delete, instance=self.instance.id)
        except FormationError as exc:
            self.busy = False
            state.add_class("-error")
            state.update(f"[b]not deleted[/b]: {reason(exc)}\n\nesc: close")
            return
        self.dismiss(self.instance.name)

    def action_keep(self) -> None:
        if not self.busy:
            self.dismiss(None)
