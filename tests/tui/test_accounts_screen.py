"""The Accounts screen against a real node (its state store in SQLite, its API on the unix
socket and signed TCP): accounts with short keys, roles, quotas and live usage; quotas set and
an account removed from the console, with keys only; a console attached over TCP (where
writing as the node is refused) says so in one line and writes nothing."""

from __future__ import annotations

from textual.widgets import DataTable, Input, Static

from formation.api.client import NodeClient
from formation.node.service import NodeService
from formation.tui.app import FormationApp
from formation.tui.screens.account_quota import AccountQuotaScreen
from formation.tui.screens.account_remove import AccountRemoveScreen
from formation.tui.screens.accounts import NO_NETWORK, AccountsScreen
from tests.tui.accounts_support import ALICE, found, seed_accounts, tenant_create, view
from tests.tui.conftest import row_cells, wait_for


def local(node: NodeService) -> NodeClient:
    return NodeClient.unix(node.settings.api.socket, timeout_s=9.5)


def table(app: FormationApp) -> DataTable:
    return app.screen.query_one("#accounts-table", DataTable)


def rows(app: FormationApp) -> dict[str, dict[str, str]]:
    t = table(app)
    return {r["account"]: r for r in (row_cells(t, i) for i in range(t.row_count))}


def text_of(app: FormationApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def open_accounts(pilot, app: FormationApp) -> None:
    await wait_for(pilot, lambda: app.link_status.online, what="the link online")
    await pilot.press("u")
    await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen), what="accounts screen")


async def test_accounts_with_keys_quotas_and_live_usage(make_app, tui_node) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_accounts(pilot, app)
        await wait_for(pilot, lambda: NO_NETWORK in text_of(app, "#accounts-state"),
                       what="the no-network line")
        async with local(tui_node) as client:
            await found(client)
            await seed_accounts(client)
            await wait_for(pilot, lambda: set(rows(app)) == {"alice", "bob"},
                           what="both accounts listed")
            alice = rows(app)["alice"]
            assert alice == {"account": "alice", "roles": "user",
                             "keys": ALICE.public_key_hex[:8], "vCPU": "0/4", "memory": "0M",
                             "instances": "0/2"}  # at 80 columns disk gives way
            assert rows(app)["bob"]["roles"] == "admin"
            assert text_of(app, "#accounts-state").startswith("2 account(s), 1 admin")
            # usage follows the store, live: an instance made by alice's own key
            await tenant_create(client, ALICE, "alice", "web")
            await wait_for(pilot, lambda: rows(app)["alice"]["vCPU"] == "2/4",
                           what="alice's usage updated")
            assert rows(app)["alice"]["instances"] == "1/2"
            assert rows(app)["alice"]["memory"] == "1G"
        assert "alice: 1 key(s)" in text_of(app, "#account-selected")  # the first row
        await pilot.resize_terminal(120, 40)
        await wait_for(pilot, lambda: "disk" in rows(app).get("alice", {}),
                       what="the disk column at 120 columns")
        await pilot.resize_terminal(30, 8)  # tiny: the name and the instance count, no crash
        await wait_for(pilot, lambda: list(rows(app).get("alice", {})) == ["account",
                                                                          "instances"],
                       what="account and instances only at 30 columns")


async def test_quotas_set_and_an_account_removed_with_keys_only(make_app, tui_node) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        async with local(tui_node) as client:
            await found(client)
            await seed_accounts(client)
            await open_accounts(pilot, app)
            await wait_for(pilot, lambda: set(rows(app)) == {"alice", "bob"})
            await pilot.press("m")  # alice: the first row
            await wait_for(pilot, lambda: isinstance(app.screen, AccountQuotaScreen))
            form = app.screen
            assert form.query_one("#q-vcpus", Input).value == "4"
            assert form.query_one("#q-memory_mb", Input).value == ""  # no limit
            before = await view(client, "accounts")
            await pilot.press("end", "ctrl+u", *"9" * 14, "enter")  # past the store's bound
            state = form.query_one("#quota-state", Static)
            await wait_for(pilot, lambda: "not saved" in str(state.render()))
            assert "vcpus: expected at most" in str(state.render()) and state.has_class("-error")
            assert await view(client, "accounts") == before  # nothing written
            await pilot.press("end", "ctrl+u", *"8", "tab", *"2048", "tab", "tab", "end",
                              "ctrl+u", *"x3")  # a letter is not taken: the field holds 3
            assert form.query_one("#q-instances", Input).value == "3"
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen))
            [alice] = [a for a in await view(client, "accounts") if a["key"] == "alice"]
            assert alice["quotas"] == {"vcpus": 8, "memory_mb": 2048, "instances": 3}
            assert alice["keys"] == [ALICE.public_key_hex] and alice["roles"] == ["user"]
            await wait_for(pilot, lambda: rows(app)["alice"]["instances"] == "0/3")
            assert "alice: quotas set" in text_of(app, "#accounts-state")

            await pilot.press("down", "x")  # bob
            await wait_for(pilot, lambda: isinstance(app.screen, AccountRemoveScreen))
            assert "Remove account bob" in str(app.screen.query_one("Label").render())
            await pilot.press("n")  # kept
            await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen))
            assert {a["key"] for a in await view(client, "accounts")} == {"alice", "bob"}
            await pilot.press("x")
            await wait_for(pilot, lambda: isinstance(app.screen, AccountRemoveScreen))
            await pilot.press("y")
            await wait_for(pilot, lambda: set(rows(app)) == {"alice"}, what="bob gone")
            assert {a["key"] for a in await view(client, "accounts")} == {"alice"}
            assert "removed account bob" in text_of(app, "#accounts-state")


async def test_over_tcp_changes_are_refused_in_one_line_and_nothing_is_written(
        make_app, tui_node) -> None:
    """A console attached to the node over signed TCP is not the node's own console: writing
    as the node is for the unix socket only. The list still shows; m and x say why not."""
    tcp = tui_node.listen_addresses()[1].removeprefix("tcp:")
    async with local(tui_node) as client:
        await found(client)
        await seed_accounts(client)
        before = await view(client, "accounts")
    app = make_app(node_address=tcp)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_accounts(pilot, app)
        await wait_for(pilot, lambda: set(rows(app)) == {"alice", "bob"})
        assert "attached to another node" in text_of(app, "#accounts-state")
        await pilot.press("m")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountQuotaScreen))
        await pilot.press("end", "ctrl+u", "1", "enter")
        state = app.screen.query_one("#quota-state", Static)
        await wait_for(pilot, lambda: "not saved" in str(state.render()))
        said = str(state.render())
        assert "local callers" in said and "\n" not in said and "Traceback" not in said
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountsScreen))
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, AccountRemoveScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: "not removed" in text_of(app, "#account-remove-state"))
        assert "local callers" in text_of(app, "#account-remove-state")
        await pilot.press("escape")
    async with local(tui_node) as client:
        assert await view(client, "accounts") == before


async def test_without_accounts_or_a_selection_it_says_what_to_do(make_app, tui_node) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        async with local(tui_node) as client:
            await found(client)
        await open_accounts(pilot, app)
        await wait_for(pilot, lambda: "formation account create" in
                       text_of(app, "#accounts-state"), what="the empty state")
        await pilot.press("m")
        await wait_for(pilot, lambda: "no account selected" in text_of(app, "#accounts-state"))
        await pilot.press("x")
        assert isinstance(app.screen, AccountsScreen)

