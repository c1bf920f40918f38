"""Pilot tests: every screen and action of the console against a real node service."""

from __future__ import annotations

import contextlib

import yaml
from textual.widgets import DataTable, Input, RichLog, Static, TextArea

from formation.api import state_routes
from formation.api.client import NodeClient
from formation.api.state_models import CreateNetworkRequest
from formation.node.service import NodeService
from formation.tui.actions import ACTIONS
from formation.tui.instance_rows import EMPTY_TEXT
from formation.tui.screens.dashboard import DashboardScreen
from formation.tui.screens.enroll import EnrollScreen
from formation.tui.screens.help import HelpScreen
from formation.tui.screens.instances import InstancesScreen
from formation.tui.screens.logs import LogsScreen
from formation.tui.screens.node_switcher import NodeSwitcher
from formation.tui.screens.peers import PeersScreen
from formation.tui.screens.settings import SettingsScreen
from formation.tui.widgets.event_log import EventLog
from tests.tui.conftest import row_cells, run_from_palette, wait_for

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHQ3VHtx7IBiyX8a2VKkZ0Gn0XxLr9bWqkzWq4L3BcBp admin"


@contextlib.asynccontextmanager
async def client_to(service: NodeService):
    client = NodeClient.unix(service.settings.api.socket)
    try:
        yield client
    finally:
        await client.close()


def text_of(widget: Static) -> str:
    return str(widget.render())


def table_text(table: DataTable) -> str:
    return "\n".join(" ".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count))


def log_text(log: RichLog) -> str:
    return "\n".join(line.text for line in log.lines)


async def test_dashboard_shows_the_node_live(make_app, tui_node: NodeService) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.node_status is not None and app.node_health)
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        summary = text_of(screen.query_one("#summary", Static))
        assert "test-node" in summary and tui_node.identity.node_id in summary
        assert "online" in text_of(screen.query_one("#banner", Static))
        await wait_for(pilot, lambda: tui_node.prober.current.probed_at is not None)
        app.link.refresh()
        parts = screen.query_one("#parts", DataTable)
        await wait_for(pilot, lambda: "qemu" in table_text(parts))
        for check in ("service api", "service data_dir", "service host-metrics"):
            assert check in table_text(parts)
        missing = [c for c in tui_node.prober.current.items if c.ok is False]
        assert all(c.reason in table_text(parts) for c in missing)  # each 'no' with its reason
        # live: an event published on the node's bus reaches the log pane
        tui_node.publish("test", "hello", {"marker": "from-the-bus"})
        events = screen.query_one(EventLog)
        await wait_for(pilot, lambda: "test/hello marker=from-the-bus" in "\n".join(events.lines))
        await wait_for(pilot, lambda: "test/hello" in str(events.render()))
        # host samples arrive as events and move the graphs
        await wait_for(pilot, lambda: len(app.samples) >= 2)
        assert "%" in str(screen.query_one("#cpu-value").render())


async def test_every_screen_is_reachable_by_its_key(make_app) -> None:
    app = make_app()
    expected = {"p": PeersScreen, "i": InstancesScreen, "l": LogsScreen, "s": SettingsScreen,
                "e": EnrollScreen, "question_mark": HelpScreen, "d": DashboardScreen}
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.link_status.online)
        for key, screen_type in expected.items():
            await pilot.press(key)
            await wait_for(pilot, lambda t=screen_type: isinstance(app.screen, t))


async def test_help_lists_every_action_and_palette_runs_them(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        table = app.screen.query_one("#keys", DataTable)
        listed = table_text(table)
        assert all(action.title in listed for action in ACTIONS)
        await run_from_palette(pilot, "logs", "Logs")
        await wait_for(pilot, lambda: isinstance(app.screen, LogsScreen))


async def test_before_a_network_every_screen_says_so(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.network is not None and app.node_status is not None)
        summary = app.screen.query_one("#summary", Static)
        await wait_for(pilot, lambda: "role: none (not in a network)" in text_of(summary))
        assert "mesh: none" in text_of(summary)
        network = text_of(app.screen.query_one("#network", Static))
        assert "network: none" in network and "0 alive, 0 suspect, 0 dead" in network
        assert "state store: 0 ops · 0 heads" in network
        await pilot.press("i")
        await wait_for(pilot, lambda: "in no network" in text_of(
            app.screen.query_one("#instances-state", Static)))
        await pilot.press("p")
        table = app.screen.query_one("#peers-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)  # this node, from its identity
        assert app.screen.rows[0].node_id == app.node_status.identity.node_id
        assert row_cells(table, 0)["member"] == "self"  # at 80 columns state stays, the id goes
        assert "id" not in row_cells(table, 0)
        assert "mesh formnet0: down (mesh.enabled is false)" in text_of(
            app.screen.query_one("#peers-state", Static))
        await pilot.press("e")
        intro = app.screen.query_one("#enroll-intro", Static)
        await wait_for(pilot, lambda: "in no network" in text_of(intro))
        assert app.screen.query_one("#found-form").display
        assert app.screen.query_one("#join-form").display
        assert "invite token" in text_of(app.screen.query_one("#join-help", Static))
        assert "hosts discovered: 0" in text_of(app.screen.query_one("#discovery-state", Static))


async def test_enroll_founds_a_network_and_every_screen_follows(make_app, tui_node) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query_one("#found-form").display
                       and app.network is not None and app.network.network is None)
        state = app.screen.query_one("#enroll-state", Static)
        await pilot.press("f")  # focus the name field
        await pilot.press(*"Not A Name")
        assert app.screen.query_one("#net-name", Input).value == "Not A Name"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "not founded" in text_of(state))
        assert "network name: expected" in text_of(state) and state.has_class("-error")
        app.screen.query_one("#net-name", Input).value = "lab"
        app.screen.query_one("#net-cidr", Input).value = "10.99.0.0/33"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "address range" in text_of(state))
        await pilot.press("escape")  # the way back
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await pilot.press("e")
        app.screen.query_one("#net-cidr", Input).value = "10.99.0.0/16"
        app.screen.query_one("#net-name", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: "founded network lab" in text_of(state))
        assert not state.has_class("-error")
        intro = app.screen.query_one("#enroll-intro", Static)
        await wait_for(pilot, lambda: "in network lab" in text_of(intro))
        assert not app.screen.query_one("#found-form").display
        # the dashboard: role, network, mesh address (claimed after the genesis), the store
        await pilot.press("d")
        summary = app.screen.query_one("#summary", Static)
        await wait_for(pilot, lambda: "mesh: 10.99.0.1" in text_of(summary))
        assert "role: admin" in text_of(summary)
        network = app.screen.query_one("#network", Static)
        await wait_for(pilot, lambda: "network lab · id " in text_of(network))
        assert app.network.network["id"] in text_of(network) and "10.99.0.0/16" in text_of(network)
        async with client_to(tui_node) as client:
            truth = await client.call(state_routes.state_status)
        assert truth.ops >= 2  # the genesis, the founder's address claim
        await wait_for(pilot, lambda: f"state store: {truth.ops} ops · 1 heads "
                       f"{truth.heads[0][:12]}" in text_of(network))
        # instances: none yet, and how to make one (tests/tui/test_instances.py runs guests)
        await pilot.press("i")
        text = app.screen.query_one("#instances-state", Static)
        await wait_for(pilot, lambda: text_of(text) == EMPTY_TEXT)
        # peers: this node with its role and mesh address
        await pilot.press("p")
        table = app.screen.query_one("#peers-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1
                       and row_cells(table, 0)["mesh ip"] == "10.99.0.1")
        assert row_cells(table, 0)["roles"] == "admin" and row_cells(table, 0)["member"] == "self"


async def test_founding_refused_by_the_node_is_shown(make_app, tui_node) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("e")
        await wait_for(pilot, lambda: app.screen.query_one("#found-form").display)
        async with client_to(tui_node) as client:  # someone else founds it first
            await client.call(state_routes.state_create_network,
                              CreateNetworkRequest(name="first", cidr="10.98.0.0/16"))
        app.screen.query_one("#net-name", Input).value = "second"
        app.screen.found_network()
        state = app.screen.query_one("#enroll-state", Static)
        await wait_for(pilot, lambda: "not founded" in text_of(state))
        assert "already belongs to a network" in text_of(state)
        intro = app.screen.query_one("#enroll-intro", Static)
        await wait_for(pilot, lambda: "in network first" in text_of(intro))


async def test_logs_screen_shows_the_node_log_ring(make_app, tui_node: NodeService) -> None:
    import logging

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("l")
        logs = app.screen.query_one("#logs", RichLog)
        logging.getLogger("formation.test").warning("disk almost full",
                                                    extra={"fields": {"free_gb": 1}})
        await wait_for(pilot, lambda: "disk almost full free_gb=1" in log_text(logs))


async def test_settings_save_persists_and_asks_for_restart(make_app, tui_node) -> None:
    app = make_app()
    async with app.run_test(size=(80, 40)) as pilot:
        await pilot.press("s")
        state = app.screen.query_one("#settings-state", Static)
        await wait_for(pilot, lambda: "saved in" in text_of(state))
        app.screen.query_one("#hostname", Input).value = "edge-7"
        app.screen.query_one("#bootstrap", Input).value = "10.0.0.2:7170, 10.0.0.3:7170"
        app.screen.query_one("#admin-keys", TextArea).text = ED25519
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "restart the node" in text_of(state))
        assert "name" in text_of(state)
    written = yaml.safe_load(tui_node.config_file.read_text())
    assert written["name"] == "edge-7"
    assert written["bootstrap"] == ["10.0.0.2:7170", "10.0.0.3:7170"]
    assert written["admin_ssh_keys"] == [ED25519]


async def test_settings_errors_name_the_field(make_app, tui_node) -> None:
    before = tui_node.config_file.read_text()
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        state = app.screen.query_one("#settings-state", Static)
        await wait_for(pilot, lambda: "saved in" in text_of(state))
        app.screen.query_one("#hostname", Input).value = "typed-but-not-saved"
        await pilot.press("ctrl+r")  # reload: the field shows the file again
        await wait_for(pilot, lambda: app.screen.query_one("#hostname", Input).value == "test-node")
        app.screen.query_one("#bootstrap", Input).value = "no-port-here"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "not saved" in text_of(state))
        assert "bootstrap.0" in text_of(state) and "HOST:PORT" in text_of(state)
        assert state.has_class("-error")
    assert tui_node.config_file.read_text() == before


async def test_node_switcher_attaches_over_signed_tcp(make_app, tui_node) -> None:
    tcp = tui_node.listen_addresses()[1].removeprefix("tcp:")
    app = make_app(known_nodes=[tcp])
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.link_status.online)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NodeSwitcher))
        await pilot.press("down", "enter")  # the second entry: the known TCP address
        await wait_for(pilot, lambda: app.link_status.online and app.link_status.where == tcp)
        await wait_for(pilot, lambda: app.node_status is not None)
        assert app.node_status.name == "test-node"
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NodeSwitcher))
        await pilot.press("escape")  # cancelling keeps the node
        assert app.link.address == tcp
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NodeSwitcher))
        await pilot.press("enter")  # back to local
        await wait_for(pilot, lambda: app.link_status.online and app.link.address is None)


async def test_node_switcher_reports_an_unreachable_address(make_app) -> None:
    app = make_app(request_timeout_s=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.link_status.online)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NodeSwitcher))
        await pilot.press("tab", *"nonsense", "enter")  # not HOST:PORT: refused, stays open
        assert isinstance(app.screen, NodeSwitcher)  # (press waits until the keys are handled)
        assert app.screen.query_one("#address", Input).value == "nonsense"
        app.screen.query_one("#address", Input).value = "127.0.0.1:1"
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.link_status.state == "offline")
        assert app.link_status.where == "127.0.0.1:1"
        assert "NOT ANSWERING" in str(app.screen.query_one("#banner").render())


async def test_refresh_colours_resize_and_quit(make_app) -> None:
    app = make_app(sixteen_colours=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.link_status.online)
        await pilot.press("c")
        assert app.theme == "ansi-dark"
        await pilot.press("c")
        assert app.theme == "textual-dark"
        await pilot.press("r")
        for size, key in (((20, 5), "s"), ((1, 1), "l"), ((200, 60), "p"), ((80, 24), "d")):
            await pilot.resize_terminal(*size)
            await wait_for(pilot, lambda size=size: tuple(app.screen.size) == size)
            await pilot.press(key)
        assert isinstance(app.screen, DashboardScreen)
        await pilot.press("q")
    assert app.return_code == 0


async def test_sixteen_colour_terminal_gets_the_ansi_theme(make_app) -> None:
    from formation.tui.app import wants_16_colours

    assert wants_16_colours({"TERM": "linux"}) and wants_16_colours({"TERM": "vt220"})
    assert not wants_16_colours({"TERM": "xterm-256color"})
    app = make_app(sixteen_colours=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.node_status is not None)
        assert app.theme == "ansi-dark"


async def test_console_started_for_a_remote_node_uses_signed_tcp(make_app, tui_node) -> None:
    """`formation console --node HOST:PORT`: no embedded node, every request signed (none is
    refused as unsigned or badly signed); the other node's settings are for its own unix socket
    only, and the settings screen says so."""
    tcp = tui_node.listen_addresses()[1].removeprefix("tcp:")
    started: list[bool] = []

    async def never_embedded():
        started.append(True)
        raise AssertionError("must not start an embedded node for --node")

    app = make_app(node_address=tcp, start_embedded=never_embedded)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.link_status.online and app.node_status is not None)
        assert app.link_status.where == tcp and app.node_status.name == "test-node"
        await pilot.press("s")
        state = app.screen.query_one("#settings-state", Static)
        await wait_for(pilot, lambda: "local callers" in text_of(state))  # 403, not 401
    assert started == []
    refused = sum(sample.value for metric in tui_node.metrics.auth_failures.collect()
                  for sample in metric.samples if sample.name.endswith("_total"))
    assert refused == 0
