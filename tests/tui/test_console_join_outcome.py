"""A token join that outlives the console's wait for its answer still ends on screen: the node
publishes a final `join` event (`joined` with the result, or `failed` with the reason) and the
console, having stopped waiting for the HTTP answer, shows it. Real nodes on loopback; the token
is the admin's own with a first endpoint that accepts connections and never answers (a host
that hangs), so the join takes as long as the joiner's contact timeout."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from formation.api import join_routes, state_routes
from formation.api.client import NodeClient
from formation.api.join_models import InviteRequest
from formation.api.state_models import CreateNetworkRequest
from formation.discovery import joiner
from formation.discovery import token as tokens
from formation.tui import join_flow
from formation.tui.app import FormationApp
from tests.loopback_nodes import loopback_nodes
from tests.tui.conftest import client_factory, wait_for

FAST = {"heartbeat_s": 0.2, "suspect_after_s": 0.6, "dead_after_s": 1.0}


@pytest.fixture
def hung_endpoint():
    """HOST:PORT of a socket that accepts and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"127.0.0.1:{server.getsockname()[1]}"


@pytest.fixture
async def pair(short_tmp: Path, monkeypatch):
    monkeypatch.setattr(joiner, "CONTACT_TIMEOUT_S", 2.0)  # the node's wait per endpoint
    monkeypatch.setattr(join_flow, "TOKEN_JOIN_TIMEOUT_S", 0.5)  # the console's wait
    async with loopback_nodes(short_tmp, 2, FAST, trust_each_other=False) as services:
        async with NodeClient.unix(services[0].settings.api.socket) as client:
            await client.call(state_routes.state_create_network,
                              CreateNetworkRequest(name="lab", cidr="10.66.0.0/16"))
        yield services


async def token_via(admin, first: str, keep_real: bool) -> str:
    async with NodeClient.unix(admin.settings.api.socket) as client:
        real = tokens.decode((await client.call(join_routes.invite_create,
                                                InviteRequest())).token)
    endpoints = (first, *real.endpoints) if keep_real else (first,)
    return dataclasses.replace(real, endpoints=endpoints).encode()


async def join_in_console(joining, token: str, until: tuple[str, ...]) -> tuple[str, list[str]]:
    """Pastes the token in the enroll screen; the state text once it shows one of `until`,
    and every text it showed on the way."""
    app = FormationApp(client_factory(joining), request_timeout_s=3.0, poll_s=0.5)
    shown: list[str] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query_one("#join-form").display)
        state = app.screen.query_one("#enroll-state", Static)
        app.screen.query_one("#join-with", Input).value = token
        app.screen.query_one("#join-with", Input).focus()
        await pilot.press("enter")

        def done() -> bool:
            text = str(state.render())
            if not shown or shown[-1] != text:
                shown.append(text)
            return any(u in text for u in until)

        await wait_for(pilot, done, 30)
        return str(state.render()), shown


async def test_a_late_success_is_shown(pair, hung_endpoint) -> None:
    admin, joining = pair
    token = await token_via(admin, hung_endpoint, keep_real=True)
    final, shown = await join_in_console(joining, token, ("joined network", "not joined"))
    assert "joined network lab" in final, shown
    assert any("still joining" in text for text in shown), shown  # it did stop waiting first


async def test_a_late_failure_is_shown_with_its_reason(pair, hung_endpoint) -> None:
    admin, joining = pair
    token = await token_via(admin, hung_endpoint, keep_real=False)
    final, shown = await join_in_console(joining, token, ("joined network", "not joined"))
    assert "not joined" in final and "Bootstrap unreachable" in final, shown
    assert hung_endpoint in final
    assert any("still joining" in text for text in shown), shown
