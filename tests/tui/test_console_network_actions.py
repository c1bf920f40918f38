"""The console's network actions against real node services on loopback (no key trusted in
advance: joining is what makes them members). Admin side, console on n0: an invite made in the
console is used by a real join; pending joins are rejected and approved from the dialog; a node
is removed after a confirmation naming it. Joining side, consoles on the other nodes: a pasted
token, a host picked from the discovered list (the admin approves), and stopping a wait."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

from formation.api import discovery_routes, join_routes, state_routes
from formation.api.client import ApiError, NodeClient
from formation.api.join_models import InviteRequest, JoinAskRequest, JoinTokenRequest
from formation.api.state_models import CreateNetworkRequest
from formation.discovery import token as tokens
from formation.node.service import NodeService
from formation.tui.app import FormationApp
from formation.tui.screens.invite import InviteScreen
from formation.tui.screens.peers import PeersScreen
from formation.tui.screens.pending_joins import PendingJoinsScreen
from formation.tui.screens.remove_node import RemoveNodeScreen
from tests.loopback_nodes import loopback_nodes
from tests.tui.conftest import client_factory, run_from_palette, wait_for

FAST = {"heartbeat_s": 0.2, "suspect_after_s": 0.6, "dead_after_s": 1.0}


@pytest.fixture
async def hosts(short_tmp: Path):
    """n0..n3 on loopback; n1..n3 find n0 through their bootstrap list."""
    async with loopback_nodes(short_tmp, 4, FAST, trust_each_other=False) as services:
        async with NodeClient.unix(services[0].settings.api.socket) as client:
            await client.call(state_routes.state_create_network,
                              CreateNetworkRequest(name="lab", cidr="10.66.0.0/16"))
        yield services


@contextlib.asynccontextmanager
async def client_to(service: NodeService, timeout_s: float = 10.0):
    async with NodeClient.unix(service.settings.api.socket, timeout_s=timeout_s) as client:
        yield client


def console(service: NodeService) -> FormationApp:
    return FormationApp(client_factory(service), request_timeout_s=3.0, poll_s=0.5)


def text_of(widget: Static) -> str:
    return str(widget.render())


def roles_of(items: list[dict], service: NodeService) -> list[str] | None:
    key = service.identity.public_key_hex
    return next((n.get("roles") for n in items if n["key"] == key), None)


async def nodes_view(service: NodeService) -> list[dict]:
    async with client_to(service) as client:
        return (await client.call(state_routes.state_view, collection="nodes")).items


def table_ids(table: DataTable, column: int = 1) -> list[str]:
    return [str(table.get_row_at(i)[column]) for i in range(table.row_count)]


async def test_invite_pending_joins_and_removal_from_the_console(hosts) -> None:
    n0, n1, n2, n3 = hosts
    app = console(n0)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.link_status.online)
        # v: an invite, as a token line and a QR code, in a dialog that fits 80x24
        await pilot.press("v")
        assert isinstance(app.screen, InviteScreen)
        await wait_for(pilot, lambda: app.screen.invite is not None)
        token = app.screen.invite.token
        assert text_of(app.screen.query_one("#invite-token", Static)).replace("\n", "") == token
        qr = text_of(app.screen.query_one("#invite-qr", Static))
        assert "\u2588" in qr and len(qr.splitlines()) == 19  # version 4, whole at 80x24
        assert app.screen.query_one("#invite-box").region.bottom <= 24
        parsed = tokens.decode(token)
        async with client_to(n0) as client:
            network = (await client.call(state_routes.state_status)).network
            admin_key = (await client.call(discovery_routes.discovery_hello)).public_key
        assert app.screen.invite.network == network and parsed.matches(bytes.fromhex(admin_key))
        await pilot.press("escape")
        # the invite is real: n1 joins with it
        async with client_to(n1, 30.0) as client:
            joined = await client.call(join_routes.join_token, JoinTokenRequest(token=token))
        assert joined.network_name == "lab"

        # a: two hosts ask without a token; one is rejected, the other approved
        askers = []
        for service in (n2, n3):
            async def ask(service=service):
                async with client_to(service, 40.0) as client:
                    return await client.call(join_routes.join_ask, JoinAskRequest(
                        address=n0.settings.api.listen, wait_s=30))
            askers.append(asyncio.ensure_future(ask()))
        try:
            await pilot.press("a")
            assert isinstance(app.screen, PendingJoinsScreen)
            table = app.screen.query_one("#pending-table", DataTable)
            ids = {n2.identity.node_id, n3.identity.node_id}
            await wait_for(pilot, lambda: set(table_ids(table)) == ids)
            table.move_cursor(row=table_ids(table).index(n3.identity.node_id))
            await pilot.press("x")
            await wait_for(pilot, lambda: table_ids(table) == [n2.identity.node_id])
            with pytest.raises(ApiError, match="rejected"):
                await asyncio.wait_for(askers[1], 20)
            table.move_cursor(row=0)
            await pilot.press("a")
            state = app.screen.query_one("#pending-state", Static)
            await wait_for(pilot, lambda: "admitted" in text_of(state))
            assert (await asyncio.wait_for(askers[0], 30)).network_name == "lab"
            await wait_for(pilot, lambda: table.row_count == 0)
            # nothing selected: said so, in words
            await pilot.press("x")
            await wait_for(pilot, lambda: "no pending join selected" in text_of(state))
        finally:
            for task in askers:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        await pilot.press("escape")

        # x: remove a node, after a confirmation that names it
        await pilot.press("p")
        assert isinstance(app.screen, PeersScreen)
        peers = app.screen.query_one("#peers-table", DataTable)

        def row_index(name: str) -> int | None:
            for i, row in enumerate(app.screen.rows):
                if row.name == name and row.roles == "member":
                    return i
            return None

        await wait_for(pilot, lambda: row_index("n1") is not None
                       and row_index("n2") is not None, 20)
        peers.move_cursor(row=0)  # this node itself: refused before any dialog
        await pilot.press("x")
        assert isinstance(app.screen, PeersScreen)
        peers.move_cursor(row=row_index("n1"))
        await pilot.press("x")
        assert isinstance(app.screen, RemoveNodeScreen)
        assert f"Remove node n1[/b] ({n1.identity.node_id})" in str(
            app.screen.query_one("Label").render()) or "n1" in str(
            app.screen.query_one("Label").render())
        await pilot.press("n")  # kept
        assert isinstance(app.screen, PeersScreen)
        assert roles_of(await nodes_view(n0), n1) == ["member"]
        peers.move_cursor(row=row_index("n2"))
        await pilot.press("x")
        await pilot.press("y")
        state = app.screen.query_one("#remove-state", Static)
        await wait_for(pilot, lambda: "removed n2" in text_of(state))
        # a removed node leaves the nodes view (it keeps no roles)
        assert roles_of(await nodes_view(n0), n2) is None
        await pilot.press("escape")
        await wait_for(pilot, lambda: any(r.name == "n2" and not r.roles
                                          for r in app.screen.rows))
        # the removal replicated: n1 no longer lists n2
        async def n1_sees_removal() -> bool:
            return roles_of(await nodes_view(n1), n2) is None

        await wait_for(pilot, n1_sees_removal, what="n1 to see n2 removed")


async def test_removing_an_unknown_node_and_over_tcp_are_refused_in_words(hosts) -> None:
    n0 = hosts[0]
    app = console(n0)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.link_status.online)
        app.push_screen(RemoveNodeScreen(hosts[3].identity.node_id, "n3"))
        await wait_for(pilot, lambda: isinstance(app.screen, RemoveNodeScreen))
        await pilot.press("y")
        state = app.screen.query_one("#remove-state", Static)
        await wait_for(pilot, lambda: "not removed" in text_of(state))
        assert "No member node" in text_of(state) and state.has_class("-error")
        await pilot.press("escape")
        # every action is in the command palette too
        await run_from_palette(pilot, "pending joins", "Pending joins")
        await wait_for(pilot, lambda: isinstance(app.screen, PendingJoinsScreen))
        await wait_for(pilot, lambda: "no host is waiting" in text_of(
            app.screen.query_one("#pending-state", Static)))
        await pilot.press("escape")
    # over signed TCP the node refuses invites (local callers only), and the dialog says so
    app = FormationApp(client_factory(n0), node_address=n0.settings.api.listen,
                       request_timeout_s=3.0, poll_s=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.link_status.online)
        await pilot.press("v")
        state = app.screen.query_one("#invite-state", Static)
        await wait_for(pilot, lambda: "no invite" in text_of(state))
        assert "local" in text_of(state).lower()


async def test_joining_from_the_console(hosts) -> None:
    n0, n1, n2, n3 = hosts
    async with client_to(n0) as client:
        token = (await client.call(join_routes.invite_create, InviteRequest())).token
    # n1 pastes the token
    app = console(n1)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query_one("#join-form").display)
        state = app.screen.query_one("#enroll-state", Static)
        await pilot.press("j")
        await pilot.press(*"not-a-token")
        await pilot.press("enter")
        await wait_for(pilot, lambda: "not joined" in text_of(state))
        assert "expected an invite token" in text_of(state) and state.has_class("-error")
        # a typo in the token (U is no token character): told with its position, no contact
        app.screen.query_one("#join-with", Input).value = token[:9] + "U" + token[10:]
        await pilot.press("enter")
        await wait_for(pilot, lambda: "bad character 'U' at position 10" in text_of(state))
        assert state.has_class("-error")
        app.screen.query_one("#join-with", Input).value = token
        await pilot.press("enter")
        await wait_for(pilot, lambda: "joined network lab" in text_of(state)
                       or "not joined" in text_of(state), 20)
        assert "joined network lab" in text_of(state), text_of(state)
        assert any("admitted to network 'lab'" in s for s in app.screen.join_steps)
        intro = app.screen.query_one("#enroll-intro", Static)
        await wait_for(pilot, lambda: "in network lab" in text_of(intro))
        assert not app.screen.query_one("#join-form").display
        # the dashboard shows replication with the admin: in sync, and how long ago at most
        await pilot.press("d")
        network = app.screen.query_one("#network", Static)
        await wait_for(pilot, lambda: "sync 1/1 peers, lag ≤" in text_of(network), 15)
        async with client_to(n1) as client:
            peer = (await client.call(state_routes.state_status)).peers[0]
        assert peer.ok and peer.last_in_sync is not None and peer.in_sync_age_s < 60
    # n2: the used token is refused in words; then n2 picks n0 from the discovered list and
    # waits until the admin approves
    app = console(n2)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query_one("#join-form").display)
        state = app.screen.query_one("#enroll-state", Static)
        await wait_for(pilot, lambda: app.screen.node_loaded)  # else "not read yet", a race
        app.screen.join_network(token)
        await wait_for(pilot, lambda: "not joined" in text_of(state), 20)
        assert "Token already used" in text_of(state)
        found = app.screen.query_one("#discovered", DataTable)
        await wait_for(pilot, lambda: "n0" in table_ids(found, 0), 20)
        found.focus()
        found.move_cursor(row=table_ids(found, 0).index("n0"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: "pending" in text_of(state) or "asking" in text_of(state))
        async with client_to(n0) as client:
            async def asked() -> list:
                return (await client.call(join_routes.join_pending)).pending

            await wait_for(pilot, asked, what="n2's request pending on n0")
            await client.call(join_routes.join_approve, id=n2.identity.node_id)
        await wait_for(pilot, lambda: "joined network lab" in text_of(state), 20)
    # n3 asks by address and stops waiting with esc: the way back
    app = console(n3)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query_one("#join-form").display)
        state = app.screen.query_one("#enroll-state", Static)
        app.screen.query_one("#join-with", Input).value = n0.settings.api.listen
        app.screen.query_one("#join-with", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "waiting as pending" in text_of(state)
                       or "asking" in text_of(state))
        await pilot.press("escape")
        await wait_for(pilot, lambda: "stopped waiting" in text_of(state))
        await pilot.press("escape")  # and back to the dashboard
        await wait_for(pilot, lambda: app.screen.sub_title == "dashboard")
