"""The Accounts screen on a member node that is not a network admin (two real node services on
loopback; n1 joined n0's network with an invite): the accounts replicate to it and show, the
screen says this node is not an admin, and a quota change or removal from its own console is
refused by its store's rules in one line, with nothing written on either node."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable, Static

from formation.api import join_routes
from formation.api.client import NodeClient
from formation.api.join_models import InviteRequest, JoinTokenRequest
from formation.node.service import NodeService
from formation.tui.app import FormationApp
from formation.tui.screens.account_quota import AccountQuotaScreen
from formation.tui.screens.account_remove import AccountRemoveScreen
from formation.tui.screens.accounts import AccountsScreen
from tests.loopback_nodes import loopback_nodes
from tests.tui.accounts_support import found, seed_accounts, view
from tests.tui.conftest import client_factory, wait_for

FAST = {"heartbeat_s": 0.2, "suspect_after_s": 0.6, "dead_after_s": 1.0}


def local(node: NodeService, timeout_s: float = 10.0) -> NodeClient:
    return NodeClient.unix(node.settings.api.socket, timeout_s=timeout_s)


def text_of(app: FormationApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def test_a_member_node_s_console_shows_accounts_and_is_refused_changes(
        short_tmp: Path) -> None:
    async with loopback_nodes(short_tmp, 2, FAST, trust_each_other=False) as (n0, n1):
        async with local(n0) as admin:
            await found(admin)
            token = (await admin.call(join_routes.invite_create, InviteRequest())).token
        async with local(n1, 30.0) as member:
            await member.call(join_routes.join_token, JoinTokenRequest(token=token))
        async with local(n0) as admin:
            await seed_accounts(admin)
            before = await view(admin, "accounts")
        app = FormationApp(client_factory(n1), request_timeout_s=3.0, poll_s=0.5)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.link_status.online)
            await pilot.press("u")
            await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen))
            table = app.screen.query_one("#accounts-table", DataTable)
            await wait_for(pilot, lambda: table.row_count == 2, timeout_s=30,
                           what="both accounts replicated to n1")
            await wait_for(pilot, lambda: "not a network admin" in
                           text_of(app, "#accounts-state"), what="the role line")
            await pilot.press("m")
            await wait_for(pilot, lambda: isinstance(app.screen, AccountQuotaScreen))
            await pilot.press("end", "ctrl+u", "1", "enter")
            await wait_for(pilot, lambda: "not saved" in text_of(app, "#quota-state"))
            said = text_of(app, "#quota-state")
            assert "admin" in said and "\n" not in said, said
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen))
            await pilot.press("x")
            await wait_for(pilot, lambda: isinstance(app.screen, AccountRemoveScreen))
            await pilot.press("y")
            await wait_for(pilot, lambda: "not removed" in text_of(app, "#account-remove-state"))
            assert "admin" in text_of(app, "#account-remove-state")
            await pilot.press("escape")
        for node in (n0, n1):
            async with local(node) as client:
                assert await view(client, "accounts") == before
