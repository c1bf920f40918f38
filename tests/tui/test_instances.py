"""The Instances screen against a real node running real guests (QEMU/TCG, the test guest kit):
the node service, its state store, placement, the reconciler, the VM API, the serial log and
the console's pilot. Keys only, as over SSH."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from guest_kit_skip import guest_kit_or_skip
from textual.widgets import DataTable, Input, Log, Static

from bench.support.guest_kit import GuestKit
from formation.api import vm_routes
from formation.api.vm_models import Image
from formation.node.service import NodeService
from formation.node.vmm import workdir
from formation.tui.app import FormationApp
from formation.tui.instance_rows import EMPTY_TEXT
from formation.tui.screens.instance_create import InstanceCreateScreen
from formation.tui.screens.instance_delete import InstanceDeleteScreen
from formation.tui.screens.instance_detail import SERIAL_LINES, InstanceDetailScreen
from formation.tui.screens.instances import InstancesScreen
from tests.tui.conftest import client_factory, row_cells, wait_for
from tests.tui.instances_support import BOOT_MARKER, vm_node
from tests.tui.instances_support import BOOT_TIMEOUT_S as BOOT_S

pytestmark = pytest.mark.qemu


@pytest.fixture(scope="module")
def kit() -> GuestKit:
    return guest_kit_or_skip()


@pytest.fixture
async def node(short_tmp: Path, kit: GuestKit) -> AsyncIterator[tuple[NodeService, Image]]:
    async with vm_node(short_tmp, kit) as (service, image):
        yield service, image


def rows(app: FormationApp) -> list[tuple[str, ...]]:
    table = app.screen.query_one("#instances-table", DataTable)
    return [tuple(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]


def state_of(app: FormationApp, name: str) -> str | None:
    """The instance's state in the list; while a dialog is over the list (the delete dialog
    until the node answered), that rather than None, which means it is not listed."""
    if not app.screen.query("#instances-table"):
        return f"(the list is under {type(app.screen).__name__})"
    for row in rows(app):
        if row[0] == name:
            return row[2]
    return None


def text_of(app: FormationApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def open_instances(pilot, app: FormationApp) -> None:
    await wait_for(pilot, lambda: app.link_status.online, what="the link online")
    await pilot.press("i")
    await wait_for(pilot, lambda: bool(app.screen.query("#instances-table")),
                   what="the instances screen")


async def replace_text(pilot, text: str) -> None:
    """In the focused field: what it holds replaced by `text`, with keys only."""
    await pilot.press("end", "ctrl+u", *text)


async def create_from_form(pilot, app: FormationApp, name: str, vcpus: str = "1") -> None:
    """Fills the form with keys only, as over SSH: the image is chosen already (the first),
    tab passes the Formfile path (its alternative) to the name, then to vCPUs; enter
    creates."""
    await pilot.press("plus")
    await wait_for(pilot, lambda: isinstance(app.screen, InstanceCreateScreen))
    form = app.screen
    await wait_for(pilot, lambda: "image(s) in the network" in text_of(app, "#create-images"),
                   what="the images read")
    assert form.focused is form.query_one("#f-image")
    await pilot.press("tab", "tab")
    assert form.focused is form.query_one("#f-name", Input)
    await replace_text(pilot, name)
    await pilot.press("tab")
    assert form.focused is form.query_one("#f-vcpus", Input)
    await replace_text(pilot, vcpus)
    await pilot.press("enter")


async def test_list_create_and_field_error(node) -> None:
    service, image = node
    app = FormationApp(client_factory(service), request_timeout_s=5.0, poll_s=1.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_instances(pilot, app)
        await wait_for(pilot, lambda: text_of(app, "#instances-state") == EMPTY_TEXT,
                       what="the empty state")
        # a field the form checks itself: said beside it, nothing sent
        await create_from_form(pilot, app, "web-1", vcpus="0")
        assert "from 1 to 128, got 0" in text_of(app, "#err-vcpus")
        assert isinstance(app.screen, InstanceCreateScreen)
        assert app.screen.focused is app.screen.query_one("#f-vcpus")  # the field in error
        await replace_text(pilot, "1")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, InstanceCreateScreen),
                       what="the form closed")
        await wait_for(pilot, lambda: state_of(app, "web-1") == "running", timeout_s=BOOT_S,
                       what="web-1 running in the list")
        table = app.screen.query_one("#instances-table", DataTable)
        row = next(row_cells(table, i) for i in range(table.row_count)
                   if row_cells(table, i)["name"] == "web-1")
        assert row["node"] == service.settings.name and row["memory"] == "512M"
        assert row["owner"].startswith("@")  # node-owned: the node wrote it
        assert "vCPU" not in row and "uptime" not in row  # at 80 columns the owner has room
        await pilot.resize_terminal(120, 40)
        await wait_for(pilot, lambda: row_cells(table, 0).get("uptime", "-") != "-",
                       what="uptime while running, at 120 columns")  # web-1: the only row
        await pilot.resize_terminal(80, 24)
        # a field only the node can check (the name is taken): its refusal beside the field
        await create_from_form(pilot, app, "web-1")
        await wait_for(pilot, lambda: "taken" in text_of(app, "#err-name"),
                       what="the name refused beside its field")
        assert isinstance(app.screen, InstanceCreateScreen)
        assert app.screen.query_one("#f-name").has_class("-invalid")
        await pilot.press("escape")
        got = await app.link.call(vm_routes.vm_list)
        assert [i.name for i in got.instances] == ["web-1"]  # nothing written by the refusal
        assert got.instances[0].image == image.digest


async def test_delete_asks_first(node) -> None:
    service, _ = node
    app = FormationApp(client_factory(service), request_timeout_s=5.0, poll_s=1.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_instances(pilot, app)
        await create_from_form(pilot, app, "doomed")
        await wait_for(pilot, lambda: state_of(app, "doomed") == "running", timeout_s=BOOT_S)
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, InstanceDeleteScreen))
        assert "doomed" in str(app.screen.query_one("Label").render())
        await pilot.press("n")  # keep it
        await wait_for(pilot, lambda: not isinstance(app.screen, InstanceDeleteScreen))
        # positive control that the kept one stays: a later change of it shows in the list
        await pilot.press("h")
        await wait_for(pilot, lambda: state_of(app, "doomed") == "stopped", timeout_s=BOOT_S,
                       what="doomed stopped (kept, not deleted)")
        assert [i.name for i in (await app.link.call(vm_routes.vm_list)).instances] == \
            ["doomed"]
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, InstanceDeleteScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: state_of(app, "doomed") is None, timeout_s=15,
                       what="doomed gone from the list")
        assert "deleted" in text_of(app, "#instances-state")
        assert (await app.link.call(vm_routes.vm_list)).instances == []


async def test_detail_follows_a_flooding_serial_log_bounded(node) -> None:
    service, _ = node
    app = FormationApp(client_factory(service), request_timeout_s=5.0, poll_s=1.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_instances(pilot, app)
        await create_from_form(pilot, app, "watched")
        await wait_for(pilot, lambda: state_of(app, "watched") is not None)
        assert app.screen.focused is app.screen.query_one("#instances-table")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, InstanceDetailScreen))
        serial = app.screen.query_one("#serial", Log)
        await wait_for(pilot, lambda: any(BOOT_MARKER in line for line in serial.lines),
                       timeout_s=BOOT_S, what="the boot marker in the serial view")
        await wait_for(pilot, lambda: "running" in text_of(app, "#detail-history"),
                       what="running in the status history")
        # a migration's progress, as the node publishes it, shows on the detail
        service.publish("vm", "migration_progress", {
            "instance": app.screen.instance.id, "status": "active",
            "transferred_bytes": 32 << 20, "remaining_bytes": 96 << 20,
            "total_bytes": 128 << 20, "dirty_rate_pps": 77})
        await wait_for(pilot, lambda: "32.0 MiB sent (25%)" in text_of(app, "#detail-migration"),
                       what="the migration progress on the detail")
        assert "dirtying 77 pages/s" in text_of(app, "#detail-migration")
        # live, and bounded: a guest flooding its console with control sequences; the view
        # keeps its last SERIAL_LINES lines, none of the sequences, and the end of the flood
        instance = app.screen.instance
        log = workdir.path_for(service.settings.data_dir / "vms", instance.id) / workdir.SERIAL
        flood = "".join(f"\x1b[31mline {n}\x1b[0m\x1b]0;title\x07\r\n" for n in range(5000))
        await asyncio.to_thread(append, log, flood + "FLOOD-END\r\n")
        await wait_for(pilot, lambda: any("FLOOD-END" in line for line in serial.lines),
                       what="the flood's last line followed live")
        assert serial.line_count <= SERIAL_LINES + 1
        end = next(n for n, line in enumerate(serial.lines) if "FLOOD-END" in line)
        assert serial.lines[end - 1] == "line 4999"
        assert not [line for line in serial.lines if "\x1b" in line or "\x07" in line]
        # the lifecycle keys work here too: delete, confirmed, goes back to the list
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, InstanceDeleteScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, InstancesScreen))
        await wait_for(pilot, lambda: state_of(app, "watched") is None,
                       what="watched gone from the list")
        assert (await app.link.call(vm_routes.vm_list)).instances == []


def append(path: Path, text: str) -> None:
    with path.open("a") as handle:
        handle.write(text)
