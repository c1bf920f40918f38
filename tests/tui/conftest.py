"""The console against a real node: a started NodeService with a config file on disk, and a
FormationApp whose client factory reaches it over the unix socket (or TCP, signed with the
node's own key, for an address)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import yaml
from settings_factory import make_settings
from waiting import until

from formation.api.client import NodeClient
from formation.node.service import NodeService
from formation.tui.app import FormationApp


def write_config(base: Path, **extra) -> Path:
    path = base / "node.yaml"
    path.write_text(yaml.safe_dump({"name": "test-node", **extra}))
    return path


@pytest.fixture
async def tui_node(short_tmp: Path) -> AsyncIterator[NodeService]:
    networkd = {"networkd_dir": str(short_tmp / "networkd")}  # never the host's own
    service = NodeService(make_settings(short_tmp, underlay=networkd),
                          write_config(short_tmp, underlay=networkd))
    await service.start()
    yield service
    await service.stop()


def client_factory(service: NodeService) -> Callable[[str | None], NodeClient]:
    socket = service.settings.api.socket

    def make(address: str | None) -> NodeClient:
        if address is None:
            return NodeClient.unix(socket)
        assert service.identity is not None
        return NodeClient.tcp(address, service.identity)

    return make


@pytest.fixture
def make_app(tui_node: NodeService) -> Callable[..., FormationApp]:
    def make(**kwargs) -> FormationApp:
        kwargs.setdefault("request_timeout_s", 2.0)
        kwargs.setdefault("poll_s", 0.5)
        return FormationApp(client_factory(tui_node), **kwargs)

    return make


async def wait_for(pilot, condition: Callable[[], object], timeout_s: float = 10.0,
                   what: str | None = None) -> None:
    """Lets the app run (the pilot's pause, so the screen refreshes) until the condition holds;
    tests/waiting.py's `until`, which says on timeout what was awaited and its last value."""
    await until(condition, timeout_s, 0.05, what=what, pause=pilot.pause)


def screen_idle(app) -> bool:
    """No worker the current screen started is pending or running: what it was asked to do is
    done, and nothing it started can still change the screen or write anything."""
    return not [w for w in app.workers if w.node is app.screen and not w.is_finished]


async def settle(pilot) -> None:
    """The screen at rest, for a snapshot: its workers done, its animations over, every pending
    message processed (the pilot's `pause()` without a delay waits for exactly that)."""
    await wait_for(pilot, lambda: screen_idle(pilot.app), what="the screen's workers to finish")
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


async def run_from_palette(pilot, query: str, title: str) -> None:
    """Opens the command palette, types `query` and runs the command once its title is the
    highlighted result (the palette searches in a worker, so a result comes some time later)."""
    from textual.command import CommandList, CommandPalette

    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, CommandPalette),
                   what="the command palette")
    await pilot.press(*query)
    results = pilot.app.screen.query_one(CommandList)

    def highlighted() -> str:
        index = results.highlighted
        return "" if index is None else str(results.get_option_at_index(index).prompt)

    await wait_for(pilot, lambda: title in highlighted(), what=f"{title!r} highlighted")
    await pilot.press("enter")


def row_cells(table, index: int) -> dict[str, str]:
    """One table row by column key (the title): which columns show depends on the width."""
    keys = [str(column.key.value) for column in table.ordered_columns]
    return dict(zip(keys, (str(c) for c in table.get_row_at(index)), strict=True))
