"""The console against a 3-host lab (root): real node processes in their own namespaces, no key
trusted in advance. A console attached to h1 over its unix socket (seen from outside h1's mount
namespace) founds nothing itself: h1 founds by CLI, then the console makes an invite that a real
`formation join` on h2 accepts, approves h3's request from the pending dialog, shows h2 and h3
alive with a round-trip time, and removes h3, which then disappears from h2's replica."""

from __future__ import annotations

import asyncio

import pytest
from lab_running import asking_to_join, cli, nodes_view, running_lab
from textual.widgets import DataTable, Static

from formation.api.client import NodeClient
from formation.lab import Lab
from formation.tui.app import FormationApp
from formation.tui.screens.invite import InviteScreen
from formation.tui.screens.pending_joins import PendingJoinsScreen
from formation.tui.screens.remove_node import RemoveNodeScreen
from tests.conftest import needs_root
from tests.tui.conftest import wait_for

pytestmark = [needs_root(), pytest.mark.root, pytest.mark.timeout(240)]


@pytest.fixture
def lab():
    with running_lab(3, pretrust=False) as instance:
        yield instance


def text_of(widget: Static) -> str:
    return str(widget.render())


async def test_console_operates_a_three_host_network(lab: Lab) -> None:
    out = await cli(lab, "h1", "network", "create", "lab", "--cidr", "10.42.0.0/16")
    assert out.returncode == 0, out.stderr
    socket = lab.socket_path("h1")
    app = FormationApp(lambda _address: NodeClient.unix(socket), request_timeout_s=3.0,
                       poll_s=1.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.link_status.online, 20)
        # an invite from the console, accepted by a real `formation join` on h2
        await pilot.press("v")
        assert isinstance(app.screen, InviteScreen)
        await wait_for(pilot, lambda: app.screen.invite is not None, 15)
        token = app.screen.invite.token
        out = await cli(lab, "h2", "join", token)
        assert out.returncode == 0 and "joined network lab" in out.stdout, out.stderr
        await pilot.press("escape")
        # h3 asks without a token; the console approves it
        async with asking_to_join(lab, "h3") as asker:
            await pilot.press("a")
            assert isinstance(app.screen, PendingJoinsScreen)
            table = app.screen.query_one("#pending-table", DataTable)
            await wait_for(pilot, lambda: table.row_count == 1
                           and str(table.get_row_at(0)[0]) == "h3", 30)
            await pilot.press("a")
            state = app.screen.query_one("#pending-state", Static)
            await wait_for(pilot, lambda: "h3" in text_of(state) and "admitted" in text_of(state))
            stdout, stderr = await asyncio.wait_for(asker.communicate(), 60)
            assert b"joined network lab" in stdout
        assert asker.returncode == 0, stderr.decode()
        await pilot.press("escape")
        # the peers screen: h2 and h3 alive, each with a round-trip time
        await pilot.press("p")
        peers = app.screen

        def row(name: str):
            return next((r for r in peers.rows if r.name == name), None)

        def alive_with_rtt(name: str) -> bool:
            r = row(name)
            return r is not None and r.member == "alive" and r.roles == "member" \
                and r.rtt.endswith("ms")

        await wait_for(pilot, lambda: alive_with_rtt("h2") and alive_with_rtt("h3"), 60)
        assert row("h1").member == "self" and row("h1").roles == "admin"
        # remove h3 from the console; it disappears from h2's replica
        assert "h3" in await nodes_view(lab, "h2")
        table = peers.query_one("#peers-table", DataTable)
        table.move_cursor(row=peers.rows.index(row("h3")))
        await pilot.press("x")
        assert isinstance(app.screen, RemoveNodeScreen)
        assert "h3" in str(app.screen.query_one("Label").render())
        await pilot.press("y")
        state = app.screen.query_one("#remove-state", Static)
        await wait_for(pilot, lambda: "removed h3" in text_of(state), 15)
        await pilot.press("escape")
        async def h3_gone_from_h2() -> bool:
            return "h3" not in await nodes_view(lab, "h2")

        await wait_for(pilot, h3_gone_from_h2, 30)
        assert set(await nodes_view(lab, "h2")) == {"h1", "h2"}
        # and the console shows h3 without roles any more
        await wait_for(pilot, lambda: row("h3") is None or not row("h3").roles, 15)

