"""One instance: its fields, its status history, a migration's progress while it moves (from
the node's migration events), and its serial output following live (the
node streams it as the guest writes; the view keeps the last lines only). The list's keys work
here too (start, stop, restart, delete); esc goes back to the list. When the stream breaks (the
instance is not on a node yet, its node restarts) it is asked again from where it stopped."""

from __future__ import annotations

import asyncio
import re
import time

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Log, Static

from formation.api import vm_routes
from formation.api.models import Event
from formation.api.vm_models import Instance, InstanceDetail, SerialQuery
from formation.errors import FormationError
from formation.tui.console_app import console_app
from formation.tui.instance_actions import ACTION_BINDINGS, InstanceActions
from formation.tui.instance_rows import detail_text, history_line
from formation.tui.join_flow import reason
from formation.tui.migration_text import migration_text

POLL_S = 5.0
TICK_S = 1.0
SERIAL_RETRY_S = 2.0
SERIAL_LINES = 2000  # what the view keeps; `formation vm logs` has the whole log
HISTORY_SHOWN = 4
TOPICS = frozenset({"vm", "state"})
# Terminal control sequences a guest writes (colours, cursor moves, titles) and the control
# characters that would disturb the console's own terminal: everything but newline and tab.
CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)?|\x1b[@-_]"
                     r"|[\x00-\x08\x0b-\x1f\x7f]")


def clean_serial(text: str) -> str:
    """Serial output made safe to show: CRLF as newlines, control sequences removed."""
    return CONTROL.sub("", text.replace("\r\n", "\n"))


class InstanceDetailScreen(InstanceActions):
    TITLE_TEXT = "instance"
    BINDINGS = [Binding("escape", "back", "Back"), *ACTION_BINDINGS]

    def __init__(self, instance: Instance) -> None:
        super().__init__()
        self.instance = instance
        self.read_at = time.monotonic()
        self.serial_offset: int | None = None  # the next byte to ask for; None: the tail
        self.notice = ""

    def compose_body(self) -> ComposeResult:
        yield Static("", id="detail-fields")
        yield Static("", id="detail-state")
        yield Static("", id="detail-migration")
        yield Static("status history: reading…", id="detail-history")
        yield Log(id="serial", max_lines=SERIAL_LINES, auto_scroll=True)

    def on_mount(self) -> None:
        super().on_mount()
        self.sub_title = f"instance {self.instance.name}"
        self.query_one("#serial", Log).border_title = "serial output (following)"
        console_app(self).event_listeners.append(self._on_event)
        self.set_interval(POLL_S, self.reload)
        self.set_interval(TICK_S, self._show_fields)
        self._show_fields()
        self.reload()
        self.follow_serial()

    def on_unmount(self) -> None:
        listeners = console_app(self).event_listeners
        if self._on_event in listeners:
            listeners.remove(self._on_event)

    def _on_event(self, event: Event) -> None:
        data = event.data or {}
        if event.topic == "vm" and data.get("instance") == self.instance.id:
            line = migration_text(event.kind, data)
            if line is not None:
                self.query_one("#detail-migration", Static).update(line)
        if event.topic in TOPICS:
            self.reload()

    def selected(self) -> Instance | None:
        return self.instance

    def acted(self, text: str, error: bool = False) -> None:
        self.notice = f"not done: {text}" if error else text
        state = self.query_one("#detail-state", Static)
        state.set_class(error, "-error")
        state.update(self.notice)
        if not error:
            self.reload()

    def _deleted(self, name: str | None) -> None:
        if name:
            self.dismiss()
            # the list says so: it is the screen the operator is back on
            from formation.tui.screens.instances import InstancesScreen

            if isinstance(self.app.screen, InstancesScreen):
                self.app.screen.acted(f"{name}: deleted; its node ends it and removes its disk")

    def action_back(self) -> None:
        self.dismiss()

    # the instance and its history ----------------------------------------------------------------
    async def _read_once(self) -> None:
        app = console_app(self)
        if app.link is None:
            return
        try:
            got = await app.link.call(vm_routes.vm_show, instance=self.instance.id)
        except FormationError as exc:
            self.query_one("#detail-history", Static).update(
                f"cannot read the instance: {reason(exc)}")
            return
        self.show(got)

    def show(self, detail: InstanceDetail) -> None:
        presenter = console_app(self).presenter
        self.instance = presenter.instance(detail.instance)
        self.read_at = time.monotonic()
        self._show_fields()
        changes = [presenter.history(c) for c in detail.history]
        lines = [history_line(c, presenter.clock(c.time)) for c in changes[-HISTORY_SHOWN:]]
        more = len(changes) - len(lines)
        title = "[b]status history[/b]" + (f" (last {len(lines)} of {len(changes)})"
                                           if more else "")
        self.query_one("#detail-history", Static).update(
            "\n".join([title, *lines]) if lines else f"{title}: nothing observed yet")

    def _show_fields(self) -> None:
        elapsed = time.monotonic() - self.read_at
        self.query_one("#detail-fields", Static).update(detail_text(self.instance, elapsed))

    # serial ------------------------------------------------------------------------------------
    @work(group="detail-serial", exclusive=True, exit_on_error=False)
    async def follow_serial(self) -> None:
        """Streams the serial log for as long as the screen is shown; each break is said in the
        log's title and the stream asked again after a pause, from the next byte not shown."""
        view = self.query_one("#serial", Log)
        while True:
            link = console_app(self).link
            why = "not connected to a node yet"
            if link is not None:
                query = SerialQuery(follow=True, offset=self.serial_offset)
                try:
                    async for chunk in link.client.stream(vm_routes.vm_serial, None, query,
                                                          instance=self.instance.id):
                        self._write(view, chunk.offset, chunk.text)
                    why = "the node ended the stream"
                except FormationError as exc:
                    why = reason(exc)
            view.border_title = f"serial output: {why}; asking again"
            await asyncio.sleep(SERIAL_RETRY_S)

    def _write(self, view: Log, offset: int, text: str) -> None:
        if self.serial_offset is not None and offset > self.serial_offset:
            view.write(f"\n[… {offset - self.serial_offset} bytes not shown …]\n")
        if self.serial_offset is None or offset + len(text.encode()) > self.serial_offset:
            view.border_title = "serial output (following)"
            skip = max(0, (self.serial_offset or 0) - offset) if self.serial_offset else 0
            shown = text.encode()[skip:].decode(errors="replace") if skip else text
            view.write(clean_serial(shown))
            self.serial_offset = offset + len(text.encode())
