"""The dashboard's log pane, fed by the node's event stream (host samples are left out: the
graphs show them). It shows the newest lines in a fixed-height box and never asks for a layout
pass, so 100 events a second cost a repaint of this pane only; the logs screen has scrollback."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

from formation.tui.console_app import console_app
from formation.tui.presenter import event_line

if TYPE_CHECKING:
    from formation.api.models import Event

QUIET_TOPICS = frozenset({"metrics"})
KEEP = 200


class EventLog(Static):
    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.recent: deque[str] = deque(maxlen=KEEP)
        self.shown_seq = 0

    @property
    def lines(self) -> list[str]:
        return list(self.recent)

    def on_mount(self) -> None:
        console_app(self).event_listeners.append(self.add_event)

    def on_unmount(self) -> None:
        listeners = console_app(self).event_listeners
        if self.add_event in listeners:
            listeners.remove(self.add_event)

    def add_event(self, event: Event) -> None:
        if event.topic in QUIET_TOPICS:
            return
        clock = console_app(self).presenter.clock(event.time)
        self.recent.append(event_line(event, clock))
        self.shown_seq = event.seq
        self.refresh()

    def render(self) -> Text:
        rows = max(self.content_region.height, 1)
        shown = list(self.recent)[-rows:]
        return Text("\n".join(shown), no_wrap=True, overflow="ellipsis")
