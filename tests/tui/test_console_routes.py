"""The routes screen against a real node service (unix socket, real SQLite): a route written
through the API shows with its account and its instance (not running yet), live, and its removal
empties the table; the rows read the same from the pure row function."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from formation.api import route_models as rm
from formation.api import route_routes as rr
from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api.client import NodeClient
from formation.tui.route_rows import route_row, routes_state_text
from tests.tui.conftest import wait_for

SPEC = {"image": "ab" * 32, "vcpus": 1, "memory_mb": 512, "disk_gb": 5, "ports": ["80/tcp"]}


def rows(table: DataTable) -> list[tuple[str, ...]]:
    return [tuple(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]


async def test_routes_screen_lists_routes_live(tui_node, make_app) -> None:
    async with NodeClient.unix(tui_node.settings.api.socket) as client:
        await client.call(sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
        await client.call(sr.state_append, sm.AppendRequest(
            kind="instance.create", payload={"name": "web", "spec": SPEC}))
        app = make_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.link_status.online)
            await pilot.press("o")
            state = app.screen.query_one("#routes-state", Static)
            await wait_for(pilot, lambda: "no routes" in str(state.render()))
            info = await client.call(rr.route_set, rm.RouteSet(host="www.example.com",
                                                               to=["web"]))
            table = app.screen.query_one("#routes-table", DataTable)
            await wait_for(pilot, lambda: rows(table) == [route_row(info)])
            assert rows(table) == [("www.example.com", "http", "80", "network",
                                    "web@not running")]
            assert "1 route(s)" in str(state.render())
            await client.call(rr.route_remove, host="www.example.com")
            await wait_for(pilot, lambda: rows(table) == [])


def test_rows_say_health_and_conflicts() -> None:
    info = rm.RouteInfo(host="t.example.com", protocol="tcp", port=22, listen=2222,
                        account="alice", author="ab" * 32, id="cd" * 32, ops=["cd" * 32],
                        conflict="listen: port 2222 is taken by the route for a.example.com",
                        backends=[rm.RouteBackend(instance="ef" * 32, name="ssh",
                                                  address="10.42.1.5", healthy=False)])
    assert route_row(info) == ("t.example.com:2222", "tcp", "22", "alice",
                               "ssh@10.42.1.5 DOWN (listen: port 2222 is taken by the route "
                               "for a.example.com)")
    assert "1 backend(s) failing" in routes_state_text(rm.RouteList(routes=[info]), None)
    assert routes_state_text(None, "HTTP 503") == "cannot read the routes: HTTP 503"
