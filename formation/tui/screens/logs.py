"""The node's recent log records (from its in-memory ring), fetched incrementally every two
seconds while the screen is shown."""

from __future__ import annotations

from datetime import datetime

from textual import work
from textual.app import ComposeResult
from textual.widgets import RichLog, Static

from formation.api import console_routes
from formation.api.console_models import LogRecord, LogsQuery
from formation.errors import FormationError
from formation.tui.console_app import console_app
from formation.tui.screens.base import ConsoleScreen

POLL_S = 2.0
LEVEL_STYLE = {"warning": "yellow", "error": "red", "critical": "red"}


def record_line(record: LogRecord, clock: str) -> str:
    fields = " ".join(f"{k}={v}" for k, v in record.fields.items())
    style = LEVEL_STYLE.get(record.level)
    level = f"[{style}]{record.level:<7}[/]" if style else f"{record.level:<7}"
    text = f"{clock} {level} {record.message} [dim]{fields}[/]" if fields else \
        f"{clock} {level} {record.message}"
    return text


class LogsScreen(ConsoleScreen):
    TITLE_TEXT = "logs"

    def __init__(self) -> None:
        super().__init__()
        self.last_seq: int | None = None
        self.instance: datetime | None = None  # started_at of the node the records are from

    def compose_body(self) -> ComposeResult:
        yield Static("", id="logs-state")
        yield RichLog(id="logs", max_lines=1000, markup=True, wrap=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(POLL_S, self.fetch)
        self.fetch()

    def on_screen_resume(self) -> None:
        self.fetch()

    @work(exclusive=True, group="logs")
    async def fetch(self) -> None:
        app = console_app(self)
        if not self.is_current or app.link is None:
            return
        status = app.node_status
        if status is not None and status.started_at != self.instance:
            self.instance, self.last_seq = status.started_at, None
            self.query_one("#logs", RichLog).clear()
        state = self.query_one("#logs-state", Static)
        try:
            got = await app.link.call(
                console_routes.node_logs, query=LogsQuery(since=self.last_seq, limit=500))
        except FormationError as exc:  # the API client's ApiError and NodeUnreachable
            state.update(f"cannot read the node's logs: {exc}")
            return
        dropped = f" · {got.dropped} older records dropped" if got.dropped else ""
        state.update(f"recent log records of the node (newest last){dropped}")
        view = self.query_one("#logs", RichLog)
        presenter = app.presenter
        for record in got.records:
            self.last_seq = record.seq
            shown = presenter.log(record)
            if shown is not None:
                view.write(record_line(shown, presenter.clock(shown.time)))
