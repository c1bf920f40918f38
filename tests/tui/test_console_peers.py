"""The peers screen and the dashboard's node counts against two real node services on loopback
that find each other through a bootstrap list: the second host appears live (membership,
discovery), and its going away shows as suspect, then dead, without a key press."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from formation.tui.app import FormationApp
from tests.loopback_nodes import loopback_nodes
from tests.tui.conftest import client_factory, row_cells, wait_for

FAST = {"heartbeat_s": 0.2, "suspect_after_s": 0.6, "dead_after_s": 1.0}


@pytest.fixture
async def pair(short_tmp: Path):
    async with loopback_nodes(short_tmp, 2, FAST, trust_each_other=True) as services:
        yield services


def row_of(table: DataTable, name: str) -> dict[str, str] | None:
    for i in range(table.row_count):
        row = row_cells(table, i)
        if row.get("name", row.get("id")) == name:
            return row
    return None


def found_row(table: DataTable, name: str) -> tuple[str, ...] | None:
    """A row of enrollment's table of discovered hosts, which has every column at any width."""
    for i in range(table.row_count):
        row = tuple(str(c) for c in table.get_row_at(i))
        if row[0] == name:
            return row
    return None


def member(table: DataTable, name: str) -> str:
    return (row_of(table, name) or {}).get("member", "")


async def test_peers_appear_and_fail_live(pair) -> None:
    n0, n1 = pair
    app = FormationApp(client_factory(n0), request_timeout_s=2.0, poll_s=5.0)
    async with app.run_test(size=(200, 40)) as pilot:  # wide enough for every column
        await wait_for(pilot, lambda: app.link_status.online)
        network = app.screen.query_one("#network", Static)
        await wait_for(pilot, lambda: "nodes: 1 alive, 0 suspect, 0 dead" in str(network.render()))
        await pilot.press("p")
        table = app.screen.query_one("#peers-table", DataTable)
        await wait_for(pilot, lambda: member(table, "n1") == "alive")
        row = row_of(table, "n1")
        assert row is not None and row["id"] == n1.identity.node_id
        assert row["found"] == "unenrolled"  # neither is in a network yet
        assert row["endpoint"] == n1.settings.api.listen
        # heartbeats echo each other's clock: a round-trip time shows (loopback: under 1 s)
        await wait_for(pilot, lambda: (row_of(table, "n1") or {}).get("rtt", "").endswith("ms"))
        assert float(row_of(table, "n1")["rtt"].removesuffix("ms")) < 1000
        assert member(table, "n0") == "self"
        # enrollment lists the hosts discovery found, to join through one of them
        await pilot.press("e")
        found = app.screen.query_one("#discovered", DataTable)
        await wait_for(pilot, lambda: found_row(found, "n1") is not None)
        assert found_row(found, "n1")[2] == "unenrolled" and "gossip" in found_row(found, "n1")[5]
        assert app.screen.query_one("#join-form").display  # they can be asked to let it join
        await pilot.press("p")
        table = app.screen.query_one("#peers-table", DataTable)
        # poll_s is 5 s: only the membership events can make these changes show in time
        await n1.stop()
        await wait_for(pilot, lambda: member(table, "n1") == "dead", timeout_s=8)
        await pilot.press("d")
        network = app.screen.query_one("#network", Static)
        await wait_for(pilot, lambda: "0 alive, 0 suspect, 1 dead" in str(network.render()))


async def test_a_nodes_capabilities_show_as_a_column_and_a_line(short_tmp: Path) -> None:
    """An admin gives its own node the edge capability: the peers screen says so, in the caps
    column when it fits and in a line under the title at any width."""
    from formation.api import state_models as sm
    from formation.api import state_routes as sr

    async with loopback_nodes(short_tmp, 1, FAST, trust_each_other=False) as (n0,):
        make = client_factory(n0)
        async with make(None) as client:
            await client.call(sr.state_create_network,
                              sm.CreateNetworkRequest(name="lab", cidr="10.42.0.0/16"))
            await client.call(sr.state_append, sm.AppendRequest(
                kind="node.capabilities",
                payload={"node": n0.identity.public_key_hex, "capabilities": ["edge"]}))
        app = FormationApp(make, request_timeout_s=2.0, poll_s=5.0)
        async with app.run_test(size=(200, 40)) as pilot:
            await wait_for(pilot, lambda: app.link_status.online)
            await pilot.press("p")
            table = app.screen.query_one("#peers-table", DataTable)
            await wait_for(pilot, lambda: (row_of(table, "n0") or {}).get("caps") == "edge")
            state = app.screen.query_one("#peers-state", Static)
            assert "capabilities: edge: n0" in str(state.render())
