"""The console application: connects to a node (or starts one embedded, through a function the
caller passes in, so this package never imports the node), then shows its status live."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual.app import App

from formation.api.client import NodeClient
from formation.tui.screens.status import StatusScreen

StopFn = Callable[[], Awaitable[None]]
StartEmbedded = Callable[[], Awaitable[StopFn]]


class FormationApp(App[None]):
    """Formation console."""

    TITLE = "Formation"
    CSS_PATH = "formation.tcss"
    BINDINGS = [("q", "quit", "Quit"), ("r", "refresh", "Refresh")]

    def __init__(
        self,
        client_factory: Callable[[], NodeClient],
        start_embedded: StartEmbedded | None = None,
        node_label: str = "local",
    ) -> None:
        super().__init__()
        self.client_factory = client_factory
        self.start_embedded = start_embedded
        self.node_label = node_label
        self.client: NodeClient = client_factory()
        self.embedded_stop: StopFn | None = None

    def on_mount(self) -> None:
        self.push_screen(StatusScreen())

    async def ensure_node(self) -> None:
        """Called by the first screen: starts an embedded node if nothing answers locally."""
        from formation.api import routes
        from formation.api.client import NodeUnreachable

        try:
            await self.client.call(routes.health)
        except NodeUnreachable:
            if self.start_embedded is None:
                raise
            self.embedded_stop = await self.start_embedded()
            self.node_label = "embedded"
            await self.client.close()
            self.client = self.client_factory()

    async def action_refresh(self) -> None:
        screen = self.screen
        if isinstance(screen, StatusScreen):
            await screen.refresh_status()

    async def on_unmount(self) -> None:
        await self.client.close()
        if self.embedded_stop is not None:
            await self.embedded_stop()
