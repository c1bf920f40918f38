"""SVG snapshots at 80x24 and 120x40. The data comes from a real node started inside the console
(the embedded path); what changes from run to run (uptime, resources, paths, times, host
capabilities, samples) is normalised by a Presenter, and the node's identity comes from a fixed
seed so its id and keys are the same every run. Update with --snapshot-update."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from settings_factory import make_settings

from formation.api import state_routes
from formation.api.client import NodeClient
from formation.api.console_models import EditableSettings, HostSample, LogRecord
from formation.api.host_models import HostInterface, HostInterfaces
from formation.api.models import Capabilities, Capability, Event, Health, NodeStatus, Resources
from formation.api.state_models import CreateNetworkRequest
from formation.tui.app import FormationApp
from formation.tui.network import NetworkSnapshot
from formation.tui.presenter import Presenter
from tests.tui.conftest import row_cells, settle, wait_for, write_config

FIXED_SEED = "11" * 32
FIXED_TIME = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
FIXED_NETWORK = "0f" * 16
SNAPSHOT_LOGGER = "formation.snapshot"


class FrozenPresenter(Presenter):
    def status(self, status: NodeStatus) -> NodeStatus:
        caps = Capabilities(
            probed_at=FIXED_TIME, wireguard_backend="wireguard-go", vmm_backend="qemu-tcg",
            items=[Capability(name=c.name, ok=True, summary="normalised for the snapshot")
                   for c in status.capabilities.items])
        return status.model_copy(update={
            "uptime_s": 3723.0, "started_at": FIXED_TIME, "capabilities": caps,
            "listen": ["unix:/run/formation/node.sock"],
            "resources": Resources(cpus=4, memory_total_mb=8192, memory_available_mb=6144,
                                   disk_total_gb=100.0, disk_free_gb=80.0, load_1m=0.5),
        })

    def health(self, health: Health) -> Health:
        checks = [c.model_copy(update={"detail": "normalised", "ok": True})
                  for c in health.checks]
        return Health(status="ok", checks=checks)

    def sample(self, sample: HostSample) -> HostSample:
        return HostSample(time=sample.time, cpu_percent=12.0, memory_used_percent=40.0,
                          net_rx_bps=1500.0, net_tx_bps=300.0)

    def event(self, event: Event) -> Event:
        return event.model_copy(update={"data": {}, "time": FIXED_TIME})

    def log(self, record: LogRecord) -> LogRecord | None:
        """Only the records the logs snapshot writes itself: the node's own depend on timing."""
        if record.logger != SNAPSHOT_LOGGER:
            return None
        return record.model_copy(update={"fields": {"where": "snapshot"}})

    def settings(self, settings: EditableSettings) -> EditableSettings:
        return settings.model_copy(update={"config_file": "/etc/formation/node.yaml"})

    def clock(self, moment: datetime) -> str:
        return "12:00:00"

    def interfaces(self, interfaces: HostInterfaces) -> HostInterfaces:
        """The machine's own links differ everywhere: one network card, loopback, the mesh."""
        return HostInterfaces(networkd=False, interfaces=[
            HostInterface(name="lo", up=True, state="unknown", kind="loopback",
                          addresses=["127.0.0.1/8"], role="loopback"),
            HostInterface(name="eth0", mac="52:54:00:12:34:56", up=True, state="up",
                          kind="ether", addresses=["192.0.2.10/24"], role="candidate"),
            HostInterface(name="formnet0", up=True, state="unknown", kind="wireguard",
                          addresses=["10.42.0.1/16"], role="formation")])

    def network(self, network: NetworkSnapshot) -> NetworkSnapshot:
        """The network id and op ids hash the founding time; mDNS's state depends on timing."""
        if network.discovered is not None:
            network.discovered = network.discovered.model_copy(update={"mdns": "normalised"})
        if network.status is not None:
            network.status = network.status.model_copy(update={
                "heads": ["ab" * 32] * len(network.status.heads),
                "network": FIXED_NETWORK if network.status.network else None})
        if network.network is not None:
            network.views["network"] = [{**network.network, "id": FIXED_NETWORK,
                                         "genesis": "cd" * 32}]
        return network


def snapshot_app(base: Path) -> FormationApp:
    settings = make_settings(base)
    (base / "data").mkdir(mode=0o700)
    key = base / "data" / "identity.key"
    key.write_text(FIXED_SEED)
    key.chmod(0o600)
    config = write_config(base)

    async def start_embedded():
        from formation.node.service import NodeService

        service = NodeService(settings, config)
        await service.start()
        return service.stop

    return FormationApp(lambda _: NodeClient.unix(settings.api.socket), start_embedded,
                        presenter=FrozenPresenter(), poll_s=0.3, sixteen_colours=False)


async def settled(pilot) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.link_status.online and app.node_status is not None
                   and app.node_health is not None and len(app.samples) >= 2)
    await wait_for(pilot, lambda: app.node_status.capabilities.items != [])


def go(key: str, marker: str):
    async def run_before(pilot) -> None:
        await settled(pilot)
        await pilot.press(key)
        await wait_for(pilot, lambda: marker in _visible_text(pilot.app))
        await settle(pilot)

    return run_before


async def dashboard_filled(pilot) -> None:
    await go("d", "state store: 0 ops")(pilot)
    app = pilot.app
    n_rows = len(app.node_health.checks) + len(app.node_status.capabilities.items)
    await wait_for(pilot, lambda: app.screen.query_one("#parts").row_count == n_rows)
    await wait_for(pilot, lambda: len(app.screen.query_one("#events").lines) >= 2)
    await settle(pilot)


def _visible_text(app) -> str:
    return " ".join(str(w.render()) for w in app.screen.query("Static"))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_dashboard_snapshot(snap_compare, short_tmp: Path, size) -> None:
    assert snap_compare(snapshot_app(short_tmp), terminal_size=size,
                        run_before=dashboard_filled)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_settings_snapshot(snap_compare, short_tmp: Path, size) -> None:
    assert snap_compare(snapshot_app(short_tmp), terminal_size=size,
                        run_before=go("s", "saved in"))


def test_dashboard_16_colour_snapshot(snap_compare, short_tmp: Path) -> None:
    """The serial-console look: the theme made of the 16 ANSI colours."""
    app = snapshot_app(short_tmp)
    app.sixteen_colours = True
    assert snap_compare(app, terminal_size=(80, 24), run_before=dashboard_filled)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_enroll_snapshot(snap_compare, short_tmp: Path, size) -> None:
    """This node's fields prefilled (eth0 offered), the plan line under them."""
    assert snap_compare(snapshot_app(short_tmp), terminal_size=size,
                        run_before=go("e", "plan: node 'test-node'"))


async def founded_peers(pilot) -> None:
    """A network founded through the node's API; the peers screen shows this node in it."""
    await settled(pilot)
    app = pilot.app
    await app.link.call(state_routes.state_create_network,
                        CreateNetworkRequest(name="lab", cidr="10.42.0.0/16"), timeout_s=9.5)
    await go("p", "1 nodes known")(pilot)
    table = app.screen.query_one("#peers-table")
    await wait_for(pilot, lambda: table.row_count == 1
                   and row_cells(table, 0)["mesh ip"] == "10.42.0.1")
    await settle(pilot)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_peers_snapshot(snap_compare, short_tmp: Path, size) -> None:
    """At 80 columns the id and byte counts give way; member state and round trip stay."""
    assert snap_compare(snapshot_app(short_tmp), terminal_size=size, run_before=founded_peers)


async def logs_written(pilot) -> None:
    await settled(pilot)
    log = logging.getLogger(SNAPSHOT_LOGGER)
    log.info("a record at info")
    log.warning("a warning, in its colour")
    log.error("an error, in its colour", extra={"fields": {"where": "snapshot"}})
    await go("l", "recent log records")(pilot)
    logs = pilot.app.screen.query_one("#logs")
    await wait_for(pilot, lambda: len(logs.lines) >= 3)
    await settle(pilot)


def test_logs_snapshot(snap_compare, short_tmp: Path) -> None:
    assert snap_compare(snapshot_app(short_tmp), terminal_size=(80, 24), run_before=logs_written)


def test_help_snapshot(snap_compare, short_tmp: Path) -> None:
    assert snap_compare(snapshot_app(short_tmp), terminal_size=(80, 24),
                        run_before=go("question_mark", "Keys work everywhere"))


async def pending_joins_dialog(pilot) -> None:
    """The pending-joins dialog over the peers screen, at 80x24: nobody is waiting."""
    await founded_peers(pilot)
    await pilot.press("a")
    await wait_for(pilot, lambda: "no host is waiting" in _visible_text(pilot.app))
    await settle(pilot)


def test_pending_joins_snapshot(snap_compare, short_tmp: Path) -> None:
    assert snap_compare(snapshot_app(short_tmp), terminal_size=(80, 24),
                        run_before=pending_joins_dialog)
