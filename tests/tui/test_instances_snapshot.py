"""The Instances screen at 80x24 as an SVG snapshot: a node started inside the console (the
embedded path) with a fixed identity, running real QEMU/TCG guests of the test guest kit, one
image and instances created through the API with fixed names. What changes from run to run
(uptime, the time a state began, the node's own figures) is normalised by the snapshot tests'
Presenter. Update with --snapshot-update."""

from __future__ import annotations

from pathlib import Path

import pytest
from guest_kit_skip import guest_kit_or_skip

from bench.support.guest_kit import GuestKit
from formation.api import state_routes, vm_routes
from formation.api.client import NodeClient
from formation.api.state_models import CreateNetworkRequest
from formation.api.vm_models import Image, ImageImport, Instance, StatusChange, VmCreate
from formation.tui.app import FormationApp
from tests.tui.conftest import settle, wait_for, write_config
from tests.tui.instances_support import (
    BOOT_TIMEOUT_S,
    networkd,
    remove_instances,
    vm_settings,
)
from tests.tui.test_console_snapshots import FIXED_SEED, FIXED_TIME, FrozenPresenter, settled


class InstancesPresenter(FrozenPresenter):
    def instance(self, instance: Instance) -> Instance:
        return instance.model_copy(update={
            "uptime_s": 3723.0 if instance.uptime_s is not None else None,
            "since": FIXED_TIME if instance.since is not None else None})

    def history(self, change: StatusChange) -> StatusChange:
        return change.model_copy(update={"time": FIXED_TIME})

    def image(self, image: Image) -> Image:
        return image


def instances_app(base: Path) -> FormationApp:
    settings = vm_settings(base)
    (base / "data").mkdir(mode=0o700)
    key = base / "data" / "identity.key"
    key.write_text(FIXED_SEED)
    key.chmod(0o600)
    config = write_config(base, underlay=networkd(base))

    async def start_embedded():
        from formation.node.service import NodeService

        service = NodeService(settings, config)
        await service.start()

        async def stop() -> None:
            try:
                await remove_instances(settings)
            finally:
                await service.stop()

        return stop

    return FormationApp(lambda _: NodeClient.unix(settings.api.socket), start_embedded,
                        presenter=InstancesPresenter(), poll_s=0.3, sixteen_colours=False)


async def until_offered(pilot, link) -> None:
    """The node's record carries the resources it offers (written after founding)."""
    async def offered() -> bool:
        nodes = await link.call(state_routes.state_view, collection="nodes")
        return any((n.get("resources") or {}).get("cpus") for n in nodes.items)

    await wait_for(pilot, offered, what="the node's offered resources in its record")


def two_instances(kit: GuestKit):
    """web-1 running, and one whose long name is cut to its column, stopped as desired."""
    async def run_before(pilot) -> None:
        await _two_instances(pilot, kit)

    return run_before


async def _two_instances(pilot, kit: GuestKit) -> None:
    await settled(pilot)
    app = pilot.app
    link = app.link
    await link.call(state_routes.state_create_network,
                    CreateNetworkRequest(name="lab", cidr="10.42.0.0/16"), timeout_s=9.5)
    image = await link.call(vm_routes.image_import, ImageImport(
        name="guest", kernel=str(kit.kernel), initrd=str(kit.initrd), cmdline=kit.cmdline),
        timeout_s=9.5)
    await until_offered(pilot, link)
    await link.call(vm_routes.vm_create, VmCreate(image=image.digest, name="web-1",
                                                  memory_mb=1024), timeout_s=9.5)
    await link.call(vm_routes.vm_create, VmCreate(
        image=image.digest, name="a-rather-long-instance-name-cut-to-fit", desired="stopped"),
        timeout_s=9.5)
    await pilot.press("i")

    def states() -> list[tuple[str, str]]:
        table = app.screen.query_one("#instances-table")
        return [(str(table.get_row_at(i)[0]), str(table.get_row_at(i)[2]))
                for i in range(table.row_count)]

    wanted = [("a-rather-long-i…", "stopped"), ("web-1", "running")]
    await wait_for(pilot, lambda: states() == wanted, timeout_s=BOOT_TIMEOUT_S,
                   what=f"the list to be {wanted}")
    await settle(pilot)


@pytest.mark.qemu
def test_instances_snapshot(snap_compare, short_tmp: Path) -> None:
    kit = guest_kit_or_skip()
    assert snap_compare(instances_app(short_tmp), terminal_size=(80, 24),
                        run_before=two_instances(kit))
