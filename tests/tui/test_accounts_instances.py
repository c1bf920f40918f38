"""The Instances screen's owner column and owner filter against a real node: an instance made
by an account's own key shows its account, node-owned work shows '@' and the node that wrote
it; f cycles all, each account (one with no instance too), node-owned work, and all again.
No guest boots: the instances name an image no node has and stay pending."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from formation.api import vm_routes
from formation.api.client import NodeClient
from formation.node.service import NodeService
from formation.tui.app import FormationApp
from formation.tui.screens.instances import InstancesScreen
from tests.tui.accounts_support import ALICE, found, node_create, seed_accounts, tenant_create
from tests.tui.conftest import row_cells, wait_for


def local(node: NodeService) -> NodeClient:
    return NodeClient.unix(node.settings.api.socket, timeout_s=9.5)


def owners(app: FormationApp) -> dict[str, str]:
    table = app.screen.query_one("#instances-table", DataTable)
    return {r["name"]: r["owner"] for r in (row_cells(table, i) for i in range(table.row_count))}


def state_text(app: FormationApp) -> str:
    return str(app.screen.query_one("#instances-state", Static).render())


async def test_owner_column_and_filter(make_app, tui_node: NodeService) -> None:
    async with local(tui_node) as client:
        await found(client)
        await seed_accounts(client)
        await tenant_create(client, ALICE, "alice", "web")
        await node_create(client, "batch")
        listed = (await client.call(vm_routes.vm_list)).instances
        assert {i.name: i.account for i in listed} == {"web": "alice", "batch": None}
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.link_status.online and app.network is not None
                       and bool(app.network.view("nodes")), what="the network read")
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, InstancesScreen))
        everyone = {"web": "alice", "batch": "@test-no…"}  # "@test-node", cut to its column
        await wait_for(pilot, lambda: owners(app) == everyone, what=f"owners {everyone}")
        steps = [({"web": "alice"}, "owner: account alice"),
                 ({}, "owner: account bob"),  # bob owns nothing: an empty list, said so
                 ({"batch": "@test-no…"}, "owner: nodes (no account)"),
                 (everyone, None)]
        for wanted, said in steps:
            await pilot.press("f")
            await wait_for(pilot, lambda wanted=wanted: owners(app) == wanted,
                           what=f"the filtered list {wanted}")
            if said is None:
                assert "owner:" not in state_text(app)
            else:
                assert said in state_text(app)
                assert f"{len(wanted)} of 2 shown" in state_text(app)
        assert "No instance of this owner." not in state_text(app)
        await pilot.press("f", "f")  # bob's: nothing
        await wait_for(pilot, lambda: "No instance of this owner." in state_text(app))
        await pilot.press("x")  # nothing selected: nothing deleted, said in one line
        await wait_for(pilot, lambda: "no instance selected" in state_text(app))
        # enter on an account: its instances
        await pilot.press("u")
        await wait_for(pilot, lambda: not isinstance(app.screen, InstancesScreen)
                       and app.screen.query_one("#accounts-table", DataTable).row_count == 2)
        await pilot.press("enter")  # alice: the first row
        await wait_for(pilot, lambda: isinstance(app.screen, InstancesScreen)
                       and owners(app) == {"web": "alice"}, what="alice's instances")
        assert "owner: account alice" in state_text(app)
    async with local(tui_node) as client:
        assert len((await client.call(vm_routes.vm_list)).instances) == 2
