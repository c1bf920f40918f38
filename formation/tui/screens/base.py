"""What every console screen has: the title bar, the link banner, the footer of keys.

The footer (and on the dashboard the graphs and the parts table) are mounted once the app's
first frame is on the terminal: Textual's Footer makes a widget per key and restyles each (and
recomposes as bindings settle), which alone was about a third of the CPU between App.run and
the first frame (bench/tui.py cold_start_cpu_s)."""

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
        if getattr(self.app, "first_frame_shown", True):  # else after_first_frame mounts it
            yield Footer()

    async def after_first_frame(self) -> None:
        """Mounts what the first frame does not wait for; safe to call more than once."""
        if not self.query(Footer):
            await self.mount(Footer())
            self.refresh_bindings()  # a Footer shows keys once told the bindings changed

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.sub_title = self.TITLE_TEXT
        if getattr(self.app, "first_frame_shown", True):  # a screen made later: at once
            self.call_later(self.after_first_frame)
