"""What every console screen has: the title bar, the link banner, the footer of keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header

from formation.tui.widgets.link_banner import LinkBanner


class ConsoleScreen(Screen):
    TITLE_TEXT = ""

    def compose(self) -> ComposeResult:
        yield Header(icon="≡")
        yield LinkBanner(id="banner")
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.sub_title = self.TITLE_TEXT
