"""Hosts that asked this admin node to join without a token, waiting: approve (a) or reject (x)
the highlighted one. Read again on every `join` event and every few seconds."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from formation.api import join_routes
from formation.api.join_models import PendingJoin
from formation.api.models import Event
from formation.errors import FormationError
from formation.tui.console_app import console_app
from formation.tui.join_flow import reason

POLL_S = 3.0
COLUMNS = (("name", 14), ("id", 26), ("address", 21), ("asks", 4))


class PendingJoinsScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "dismiss", "Close"), Binding("a", "decide('approve')", "Approve"),
                Binding("x", "decide('reject')", "Reject"), Binding("r", "reload", "Reload")]

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[PendingJoin] = []
        self.notice = ""  # the last decision or refusal, kept under the count until the next
        self.notice_is_error = False

    def compose(self) -> ComposeResult:
        with Vertical(id="pending-box", classes="dialog"):
            yield Label("[b]Pending joins[/b] · a: approve · x: reject · r: reload · esc: close")
            yield Static("reading the pending joins…", id="pending-state")
            yield DataTable(id="pending-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one("#pending-table", DataTable)
        for title, width in COLUMNS:
            table.add_column(title, width=width)
        console_app(self).event_listeners.append(self._on_event)
        self.set_interval(POLL_S, self.action_reload)
        self.action_reload()

    def on_unmount(self) -> None:
        listeners = console_app(self).event_listeners
        if self._on_event in listeners:
            listeners.remove(self._on_event)

    def _on_event(self, event: Event) -> None:
        if event.topic == "join":
            self.action_reload()

    def say(self, text: str, error: bool = False) -> None:
        state = self.query_one("#pending-state", Static)
        state.set_class(error, "-error")
        state.update(text)

    @work(exclusive=True, group="pending-read")
    async def action_reload(self) -> None:
        link = console_app(self).link
        if link is None:
            self.say("not connected to a node yet", error=True)
            return
        try:
            got = await link.call(join_routes.join_pending)
        except FormationError as exc:
            self.say(f"cannot read the pending joins: {reason(exc)}", error=True)
            return
        self.show(got.pending)

    def show(self, pending: list[PendingJoin]) -> None:
        count = (f"{len(pending)} host(s) waiting for approval" if pending else
                 "no host is waiting (a host asks with `formation join --request "
                 "THIS-HOST:PORT` or from its console)")
        self.say("\n".join(x for x in (count, self.notice) if x), self.notice_is_error)
        if [p.id for p in pending] == [p.id for p in self.pending]:
            return
        self.pending = pending
        table = self.query_one("#pending-table", DataTable)
        table.clear()
        for p in pending:
            table.add_row(p.name or "?", p.id, p.address or "-", str(p.asks))

    def note(self, text: str, error: bool = False) -> None:
        """A decision's outcome: shown now, and kept when the list is read again."""
        self.notice, self.notice_is_error = text, error
        self.say(text, error)

    @work(exclusive=True, group="pending-decide")
    async def action_decide(self, verdict: str) -> None:
        table = self.query_one("#pending-table", DataTable)
        if not self.pending or not 0 <= table.cursor_row < len(self.pending):
            self.note("no pending join selected: ↑↓ to choose one", error=True)
            return
        chosen = self.pending[table.cursor_row]
        link = console_app(self).link
        if link is None:
            self.note("[b]not done[/b]: not connected to a node yet", error=True)
            return
        endpoint = join_routes.join_approve if verdict == "approve" else join_routes.join_reject
        self.say(f"{verdict} {chosen.name} ({chosen.id})…")
        try:
            decision = await link.call(endpoint, id=chosen.id)
        except FormationError as exc:
            self.note(f"[b]not done[/b]: {reason(exc)}", error=True)
            return
        self.note(f"{chosen.name or '?'} ({chosen.id}): {decision.status}")
        console_app(self).read_network()
        self.action_reload()
