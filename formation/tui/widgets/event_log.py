"""A log pane fed by the node's event stream (host samples are left out: the graphs show them)."""

from __future__ import annotations

from textual.widgets import RichLog

from formation.api.models import Event
from formation.tui.presenter import event_line

QUIET_TOPICS = frozenset({"metrics"})


class EventLog(RichLog):
    def __init__(self, **kwargs) -> None:
        super().__init__(max_lines=500, markup=False, wrap=False, **kwargs)
        self.shown_seq = 0

    def on_mount(self) -> None:
        self.app.event_listeners.append(self.add_event)  # type: ignore[attr-defined]

    def on_unmount(self) -> None:
        listeners = self.app.event_listeners  # type: ignore[attr-defined]
        if self.add_event in listeners:
            listeners.remove(self.add_event)

    def add_event(self, event: Event) -> None:
        if event.topic in QUIET_TOPICS:
            return
        clock = self.app.presenter.clock(event.time)  # type: ignore[attr-defined]
        self.write(event_line(event, clock))
        self.shown_seq = event.seq
