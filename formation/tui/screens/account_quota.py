"""An account's quotas as a form: one field per figure, prefilled with the current quota
(empty: no limit). Enter saves them all as one `account.set` that keeps the account's keys and
roles (what `formation account quota NAME --clear --vcpus …` writes); esc leaves them. A field
that is not a whole number is named beside it and nothing is written; the node's refusal
shows in one line. Dismissed with a line saying what was done, None when left."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from formation.api import state_models, state_routes
from formation.api.account_usage import FIGURES
from formation.errors import FormationError
from formation.tui.account_rows import AccountRow, figure_text, parse_quota, quota_payload
from formation.tui.console_app import console_app
from formation.tui.join_flow import reason

LABELS = {"vcpus": "vCPUs", "memory_mb": "memory MB", "disk_gb": "disk GB",
          "instances": "instances"}


class AccountQuotaScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "leave", "Leave"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, row: AccountRow) -> None:
        super().__init__()
        self.row = row
        self.busy = False

    def compose(self) -> ComposeResult:
        with Vertical(id="quota-box", classes="dialog"):
            yield Label(f"[b]Quotas of account {self.row.name}[/b] (empty: no limit)")
            for name in FIGURES:
                limit = self.row.quotas.get(name)
                with Horizontal(classes="form-row"):
                    yield Label(LABELS[name], classes="quota-label")
                    yield Input("" if limit is None else str(limit), id=f"q-{name}",
                                restrict=r"[0-9]*", max_length=14)
                    yield Label(f"in use {figure_text(self.row, name).split('/')[0]}",
                                classes="quota-used")
            yield Static("enter: save · tab: next field · esc: leave", id="quota-state")

    def values(self) -> tuple[dict[str, int], list[str]]:
        """The quotas typed, and the problems (one line each) when some are not numbers."""
        quotas: dict[str, int] = {}
        problems: list[str] = []
        for name in FIGURES:
            got = parse_quota(name, self.query_one(f"#q-{name}", Input).value)
            if isinstance(got, str):
                problems.append(got)
            elif got is not None:
                quotas[name] = got
        return quotas, problems

    def on_input_submitted(self, _: Input.Submitted) -> None:
        self.action_save()

    @work(exclusive=True, group="account-quota", exit_on_error=False)
    async def action_save(self) -> None:
        if self.busy:
            return
        state = self.query_one("#quota-state", Static)
        quotas, problems = self.values()
        if problems:
            state.add_class("-error")
            state.update(f"[b]not saved[/b]: {problems[0]}")
            return
        link = console_app(self).link
        if link is None:
            state.add_class("-error")
            state.update("[b]not saved[/b]: not connected to a node yet")
            return
        self.busy = True
        state.remove_class("-error")
        state.update(f"saving the quotas of {self.row.name}…")
        try:
            await link.call(state_routes.state_append, state_models.AppendRequest(
                kind="account.set", payload=quota_payload(self.row, quotas)))
        except FormationError as exc:
            self.busy = False
            state.add_class("-error")
            state.update(f"[b]not saved[/b]: {reason(exc)}")
            return
        said = " ".join(f"{k}={v}" for k, v in quotas.items()) or "no quotas"
        self.dismiss(f"{self.row.name}: quotas set ({said})")

    def action_leave(self) -> None:
        if not self.busy:
            self.dismiss(None)
