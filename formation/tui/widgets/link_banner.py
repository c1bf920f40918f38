"""One line at the top of every screen: which node, and whether it answers."""

from __future__ import annotations

from textual.widgets import Static

from formation.tui.link_status import LinkStatus


def banner_text(status: LinkStatus) -> str:
    where = f"node: {status.where}"
    if status.state == "online":
        return f"{where} · [b]online[/b]"
    if status.state == "connecting":
        return f"{where} · connecting… {status.detail}".rstrip()
    return f"{where} · [b]NOT ANSWERING[/b] ({status.detail}) · retrying"


class LinkBanner(Static):
    def on_mount(self) -> None:
        self.watch(self.app, "link_status", self.show, init=True)

    def show(self, status: LinkStatus) -> None:
        self.set_class(status.state == "offline", "-offline")
        self.update(banner_text(status), layout=False)  # one line, always
