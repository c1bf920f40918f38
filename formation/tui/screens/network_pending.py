"""Screens whose API comes with the network work (mesh, discovery, state store): they say what
will be here, and which of those endpoints the attached node offers today."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.widgets import Static

from formation.tui.features import matching, offered_paths
from formation.tui.link_status import LinkStatus
from formation.tui.screens.base import ConsoleScreen


class NetworkPendingScreen(ConsoleScreen):
    AREA = ""
    INTRO = ""

    def compose_body(self) -> ComposeResult:
        yield Static(self.INTRO, id="intro", classes="prose")
        yield Static(self.details(), id="details", classes="prose")
        yield Static("checking what this node's API offers…", id="offered", classes="prose")

    def details(self) -> str:
        return ""

    def on_mount(self) -> None:
        super().on_mount()
        self.watch(self.app, "link_status", self.link_changed, init=True)

    def link_changed(self, status: LinkStatus) -> None:
        if status.online:
            self.check_api()

    @work(exclusive=True, group="offered")
    async def check_api(self) -> None:
        paths = await offered_paths(self.app.link)  # type: ignore[attr-defined]
        widget = self.query_one("#offered", Static)
        if isinstance(paths, str):
            widget.update(f"could not read the node's API: {paths}")
            return
        found = matching(paths, self.AREA)
        if found:
            widget.update("the node offers " + ", ".join(found) +
                          " — this console does not show them yet")
        else:
            widget.update(f"this node's API has no {self.AREA} endpoints yet: "
                          "they come with the network work")
