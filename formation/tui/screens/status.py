"""The node status screen: identity, resources and every capability with its reason. Live: it
listens to the node's event stream and refreshes every few seconds."""

from __future__ import annotations

import asyncio

from textual import work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from formation.api import routes
from formation.api.client import ApiError, NodeUnreachable
from formation.api.models import NodeStatus

REFRESH_S = 3.0


def identity_text(status: NodeStatus) -> str:
    ident, res = status.identity, status.resources
    minutes, seconds = divmod(int(status.uptime_s), 60)
    return (
        f"[b]{status.name}[/b]  {ident.node_id}  v{status.version}  up {minutes}m{seconds:02d}s\n"
        f"key {ident.fingerprint}\n"
        f"{res.cpus} CPUs · {res.memory_available_mb}/{res.memory_total_mb} MiB free · "
        f"{res.disk_free_gb}/{res.disk_total_gb} GB disk free · load {res.load_1m:.2f}"
    )


class StatusScreen(Screen):
    """This node at a glance."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("connecting…", id="banner")
        yield Static("", id="identity")
        table: DataTable = DataTable(id="capabilities", cursor_type="row", zebra_stripes=True)
        table.add_columns("capability", "ok", "detail")
        yield table
        yield Static("", id="message")
        yield Footer()

    def on_mount(self) -> None:
        self.connect()

    @work(exclusive=True, group="connect")
    async def connect(self) -> None:
        try:
            await self.app.ensure_node()  # type: ignore[attr-defined]
        except (NodeUnreachable, ApiError) as exc:
            self.show_message(str(exc))
            return
        await self.refresh_status()
        self.set_interval(REFRESH_S, self.refresh_status)
        self.follow_events()

    @work(exclusive=True, group="events")
    async def follow_events(self) -> None:
        """Refreshes on every capability or node event; reconnects when the stream drops."""
        client = self.app.client  # type: ignore[attr-defined]
        while True:
            try:
                async for event in client.events():
                    if event.topic in ("capabilities", "node"):
                        await self.refresh_status()
            except (NodeUnreachable, ApiError) as exc:
                self.show_message(f"event stream lost: {exc}; retrying")
            await asyncio.sleep(REFRESH_S)

    async def refresh_status(self) -> None:
        client = self.app.client  # type: ignore[attr-defined]
        try:
            status = await client.call(routes.node_status)
        except (NodeUnreachable, ApiError) as exc:
            self.show_message(str(exc))
            return
        self.show_message("")
        label = self.app.node_label  # type: ignore[attr-defined]
        self.query_one("#banner", Static).update(f"node: {label} · {status.listen[0]}")
        self.query_one("#identity", Static).update(identity_text(status))
        self.fill_capabilities(status)

    def fill_capabilities(self, status: NodeStatus) -> None:
        table = self.query_one("#capabilities", DataTable)
        table.clear()
        caps = status.capabilities
        if caps.probed_at is None:
            table.add_row("…", "…", "probing the host (a test guest boots to check KVM)")
            return
        for item in caps.items:
            mark = {True: "[green]yes[/]", False: "[red]no[/]", None: "…"}[item.ok]
            table.add_row(item.name, mark, item.summary if item.ok else item.reason)

    def show_message(self, text: str) -> None:
        self.query_one("#message", Static).update(text)
