"""The console before it has a link to a node (the link is made once the first frame is drawn
and the caller's start-up work is done): a dialog that needs the node says it is not connected,
instead of a worker calling a link that does not exist (which ended the whole console)."""

from __future__ import annotations

import threading

from textual.widgets import Static

from formation.api.client import NodeClient
from formation.tui.app import FormationApp
from formation.tui.screens.remove_node import RemoveNodeScreen
from tests.tui.conftest import wait_for


def no_client(address: str | None) -> NodeClient:
    raise AssertionError("the link is never made in this test")


async def test_removing_a_node_before_the_link_exists_says_not_connected() -> None:
    release = threading.Event()

    def slow_prepare() -> list[str]:  # `formation console` reads its settings here
        release.wait(30)
        return []

    app = FormationApp(no_client, prepare=slow_prepare)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.first_frame_shown)
            assert app.link is None
            app.push_screen(RemoveNodeScreen("ab" * 32, "h2"))
            await wait_for(pilot, lambda: isinstance(app.screen, RemoveNodeScreen))
            await pilot.press("y")
            state = app.screen.query_one("#remove-state", Static)
            await wait_for(pilot, lambda: "not connected" in str(state.render()))
            assert "not removed" in str(state.render())
            assert isinstance(app.screen, RemoveNodeScreen) and not app.screen.removed
    finally:
        release.set()  # lets the start-up thread end (the app has exited without a link)
