"""The console application. It talks to a node only through the API (a `NodeLink`), or starts
one embedded through a function the caller passes in, so this package never imports the node.
Screens are Textual modes; every action has a key, a command-palette entry and a help line."""

from __future__ import annotations

import asyncio
import importlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.reactive import reactive

from formation.tui.actions import ACTIONS
from formation.tui.commands import ConsoleCommands
from formation.tui.link_status import POLL_S, REQUEST_TIMEOUT_S, LinkStatus
from formation.tui.peer_actions import PeerActions
from formation.tui.presenter import Presenter
from formation.tui.screens.base import ConsoleScreen
from formation.tui.screens.dashboard import DashboardScreen

if TYPE_CHECKING:
    from textual.screen import Screen

    from formation.api.console_models import HostSample
    from formation.api.models import Event, Health, NodeStatus
    from formation.tui.link import ClientFactory, NodeLink, StartEmbedded
    from formation.tui.network import NetworkSnapshot

# Only the first screen is imported with the app: launch -> first frame pays for nothing else.
# The API models, HTTP client and the other screens load in a thread once that frame is drawn
# (bench/tui.py cold_start_s; tests/unit/tui/test_console_imports.py).
LAZY_SCREENS = {
    "peers": ("formation.tui.screens.peers", "PeersScreen"),
    "instances": ("formation.tui.screens.instances", "InstancesScreen"),
    "routes": ("formation.tui.screens.routes", "RoutesScreen"),
    "logs": ("formation.tui.screens.logs", "LogsScreen"),
    "settings": ("formation.tui.screens.settings", "SettingsScreen"),
    "enroll": ("formation.tui.screens.enroll", "EnrollScreen"),
    "help": ("formation.tui.screens.help", "HelpScreen"),
}
AFTER_FIRST_FRAME = ("formation.tui.link", "formation.tui.network")
LATER = (*(module for module, _ in LAZY_SCREENS.values()), "formation.tui.screens.node_switcher")


def lazy_screen(module: str, name: str) -> Callable[[], Screen]:
    """A MODES entry that makes its screen from a module imported on first use (usually
    already imported by then, off the loop, by FormationApp._connect)."""

    def make() -> Screen:
        return getattr(importlib.import_module(module), name)()

    return make


def import_all(modules: Iterable[str]) -> None:
    for module in modules:
        importlib.import_module(module)

SAMPLES_KEPT = 120
NETWORK_READ_EVERY_S = 1.0
SIXTEEN_COLOUR_TERMS = ("linux", "vt100", "vt102", "vt220", "xterm-16color", "ansi")
ANSI_THEME = "ansi-dark"
DEFAULT_THEME = "textual-dark"


def wants_16_colours(environ: dict[str, str] | None = None) -> bool:
    """The Linux console and serial terminals: use the theme made of the 16 ANSI colours."""
    env = os.environ if environ is None else environ
    if env.get("FORMATION_CONSOLE_COLOURS") in ("16", "ansi"):
        return True
    return env.get("TERM", "") in SIXTEEN_COLOUR_TERMS


class FormationApp(PeerActions):
    """Formation console."""

    TITLE = "Formation"
    CSS_PATH = "formation.tcss"
    MODES = {
        "dashboard": DashboardScreen,
        **{mode: lazy_screen(*where) for mode, where in LAZY_SCREENS.items()},
    }
    DEFAULT_MODE = "dashboard"
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(a.key, a.action, a.title, show=a.show) for a in ACTIONS),
        Binding("f1", "app.switch_mode('help')", "Help", show=False),
    ]
    COMMANDS = App.COMMANDS | {ConsoleCommands}

    # Data, not display: the widgets watching them repaint themselves (repaint=True here would
    # repaint the whole screen on every change).
    node_status: reactive[NodeStatus | None] = reactive(None, always_update=True, repaint=False)
    node_health: reactive[Health | None] = reactive(None, always_update=True, repaint=False)
    link_status: reactive[LinkStatus] = reactive(LinkStatus("connecting"), repaint=False)
    samples_version: reactive[int] = reactive(0, repaint=False)
    network: reactive[NetworkSnapshot | None] = reactive(None, always_update=True, repaint=False)

    def __init__(
        self,
        client_factory: ClientFactory,
        start_embedded: StartEmbedded | None = None,
        node_address: str | None = None,
        known_nodes: Iterable[str] = (),
        presenter: Presenter | None = None,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        poll_s: float = POLL_S,
        sixteen_colours: bool | None = None,
        prepare: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        super().__init__()
        self.presenter = presenter or Presenter()
        self.known_nodes = list(dict.fromkeys(known_nodes))
        self.link: NodeLink | None = None  # made once the HTTP client is imported
        self._link_args = (client_factory, node_address, start_embedded, request_timeout_s,
                           poll_s)
        self.samples: deque[HostSample] = deque(maxlen=SAMPLES_KEPT)
        self.event_listeners: list[Callable[[Event], None]] = []
        self.sixteen_colours = wants_16_colours() if sixteen_colours is None else sixteen_colours
        self._network_reading = False
        self._network_stale = False
        self._prepare = prepare
        self.first_frame_shown = False
        self.startup_error: Exception | None = None

    def on_mount(self) -> None:
        self.theme = ANSI_THEME if self.sixteen_colours else DEFAULT_THEME

    async def on_ready(self) -> None:
        """The first frame is on the terminal: now what it did not wait for (the footer, the
        dashboard's graphs and table, and the imports in _connect's thread, which would have
        slowed its drawing)."""
        self.first_frame_shown = True
        self.run_worker(self._connect(), name="connect", group="connect")
        if isinstance(self.screen, ConsoleScreen):
            await self.screen.after_first_frame()

    async def _connect(self) -> None:
        """Imports the HTTP client and runs `prepare` off the loop (the first frame is already
        drawn), then connects. `prepare` is the caller's start-up work that the first frame need
        not wait for (`formation console` reads its settings there: pydantic and YAML cost a
        quarter of a second); it returns more known nodes, and an error from it ends the app
        and is kept in `startup_error` for the caller to report in one line."""
        await asyncio.to_thread(import_all, AFTER_FIRST_FRAME)
        if self._prepare is not None:
            try:
                more = await asyncio.to_thread(self._prepare)
            except Exception as exc:  # the caller reports it, in its own words
                self.startup_error = exc
                self.exit(return_code=1)
                return
            self.known_nodes = list(dict.fromkeys([*self.known_nodes, *more]))
        from formation.tui.link import NodeLink

        factory, address, start_embedded, timeout_s, poll_s = self._link_args
        self.link = NodeLink(factory, self, address, start_embedded, timeout_s, poll_s)
        self.link.start()
        await asyncio.to_thread(import_all, LATER)

    async def on_unmount(self) -> None:
        if self.link is not None:
            await self.link.stop()

    # LinkListener: called from the link's tasks on this loop ----------------------------------
    def link_changed(self, status: LinkStatus) -> None:
        self.link_status = status

    def link_snapshot(self, status: NodeStatus, health: Health) -> None:
        self.node_status = self.presenter.status(status)
        self.node_health = self.presenter.health(health)
        self.read_network()

    def link_samples(self, samples: list[HostSample], replace: bool) -> None:
        if replace:
            self.samples.clear()
        newest = self.samples[-1].time if self.samples else None
        fresh = [s for s in samples if newest is None or s.time > newest]  # replays overlap
        self.samples.extend(self.presenter.sample(s) for s in fresh)
        self.samples_version += 1

    def link_event(self, event: Event) -> None:
        from formation.tui.network import NETWORK_TOPICS  # loaded before the link started

        if event.topic in NETWORK_TOPICS:
            self.read_network()
        shown = self.presenter.event(event)
        for listener in list(self.event_listeners):
            listener(shown)

    def read_network(self) -> None:
        """Reads the network again; while a read runs, one more follows it (never more), and
        reads start at most every NETWORK_READ_EVERY_S, so a burst of events costs two reads."""
        if self._network_reading:
            self._network_stale = True
            return
        self._network_reading = True
        self.run_worker(self._read_network_loop(), name="network", group="network",
                        exit_on_error=False)

    async def _read_network_loop(self) -> None:
        from formation.tui.network import fetch_network  # loaded before the link started

        try:
            while True:
                self._network_stale = False
                if self.link is None or not self.link_status.online:
                    return
                began = time.monotonic()
                self.network = self.presenter.network(await fetch_network(self.link))
                if not self._network_stale:
                    return
                # A stream of state events must not turn into a stream of reads.
                await asyncio.sleep(max(0.0, NETWORK_READ_EVERY_S - (time.monotonic() - began)))
        finally:
            self._network_reading = False

    # actions -----------------------------------------------------------------------------------
    def action_refresh_node(self) -> None:
        if self.link is None:
            return
        self.link.refresh()
        self.notify("asking the node again", timeout=2)

    def action_switch_node(self) -> None:
        if self.link is None:
            self.notify("still connecting", timeout=2)
            return
        from formation.tui.screens.node_switcher import NodeSwitcher

        self.push_screen(NodeSwitcher(self.known_nodes, self.link.address), self._switch_to)

    async def _switch_to(self, choice: str | bool | None) -> None:
        if choice is False:  # cancelled
            return
        address = choice if isinstance(choice, str) and choice else None
        self.samples.clear()
        self.node_status = None
        self.node_health = None
        self.network = None
        if self.link is not None:
            await self.link.switch(address)

    def action_toggle_colours(self) -> None:
        self.sixteen_colours = not self.sixteen_colours
        self.theme = ANSI_THEME if self.sixteen_colours else DEFAULT_THEME
