"""The console's confirm dialogs (remove an account, delete an instance, remove a node) share one
shape: a title and what the action costs, y does it, n or esc keeps things as they are. A failure
keeps the dialog open with the reason in one line, so the user can read it and close it; nothing
is done twice while a call is in flight."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from formation.errors import FormationError
from formation.tui.console_app import console_app
from formation.tui.join_flow import reason

R = TypeVar("R")


class ConfirmScreen(ModalScreen[R], Generic[R]):
    BINDINGS = [Binding("y", "confirm", "Yes"), Binding("n", "keep", "Keep"),
                Binding("escape", "keep", "Keep")]
    box_id = "confirm-box"
    state_id = "confirm-state"
    verb = "remove"       # "y: remove it", and "not removed: why" with `failed`
    failed = "not removed"

    def __init__(self) -> None:
        super().__init__()
        self.busy = False

    def question(self) -> str:
        raise NotImplementedError

    def cost(self) -> str:
        """What goes if the user says yes."""
        raise NotImplementedError

    def progress(self) -> str:
        raise NotImplementedError

    async def perform(self, link: Any) -> R:
        """The API call; a FormationError keeps the dialog open with its reason."""
        raise NotImplementedError

    def finish(self, outcome: R) -> None:
        self.dismiss(outcome)

    def kept(self) -> R | None:
        return None

    def compose(self) -> ComposeResult:
        with Vertical(id=self.box_id, classes="dialog"):
            yield Label(self.question())
            yield Static(f"{self.cost()}\n\ny: {self.verb} it · n or esc: keep it",
                         id=self.state_id)

    @property
    def state(self) -> Static:
        return self.query_one(f"#{self.state_id}", Static)

    @work(exclusive=True, group="confirm", exit_on_error=False)
    async def action_confirm(self) -> None:
        if self.busy:
            return
        link = console_app(self).link
        if link is None:
            self._failed("not connected to a node yet")
            return
        self.busy = True
        self.state.update(f"{self.progress()}…")
        try:
            outcome = await self.perform(link)
        except FormationError as exc:
            self.busy = False
            self._failed(reason(exc))
            return
        self.finish(outcome)

    def _failed(self, why: str) -> None:
        self.state.add_class("-error")
        self.state.update(f"[b]{self.failed}[/b]: {why}\n\nesc: close")

    def action_keep(self) -> None:
        if not self.busy:
            self.dismiss(self.kept())
