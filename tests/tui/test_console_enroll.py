"""The enrollment screen's fields about this node, against a real node whose host-network part
reads a network namespace made here (a veth pair to choose as the underlay, loopback and a
link named as the mesh interface, which are not offered): prefilled fields, the plan line,
every wrong field on screen with nothing written, and a founding that saves hostname, keys,
resources and underlay (the networkd file in a temporary directory) and offers the resources
in the node's record."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from host_links import LinkedNamespace, linked_namespace
from settings_factory import make_settings
from textual.widgets import Input, Select, Static, TextArea
from waiting import until

from formation.api import state_routes
from formation.node.host_network.component import HostNetwork
from formation.node.net.host import NetHost
from formation.node.parts import build_parts
from formation.node.service import NodeService
from formation.tui.app import FormationApp
from formation.tui.widgets.node_fields import NodeFieldsForm
from tests.tui.conftest import (
    client_factory,
    run_from_palette,
    screen_idle,
    wait_for,
    write_config,
)
from tests.tui.test_console_screens import ED25519, client_to, text_of

NETWORKD_FILE = "10-formation-underlay.network"


@pytest.fixture
async def links() -> AsyncIterator[LinkedNamespace]:
    async with linked_namespace() as space:
        yield space


@pytest.fixture
async def tui_node(short_tmp: Path, links: LinkedNamespace) -> AsyncIterator[NodeService]:
    """conftest's node, its interfaces read in the test's namespace (make_app uses this)."""
    networkd = {"networkd_dir": str(short_tmp / "networkd")}  # never the host's own
    settings = make_settings(short_tmp, underlay=networkd)
    parts = replace(build_parts(settings), host_network=HostNetwork(NetHost(netns=links.netns)))
    service = NodeService(settings, write_config(short_tmp, underlay=networkd), parts=parts)
    await service.start()
    yield service
    await service.stop()


async def open_enrollment(pilot) -> NodeFieldsForm:
    app = pilot.app
    await pilot.press("e")
    await wait_for(pilot, lambda: getattr(app.screen, "node_loaded", False)
                   and app.node_status is not None)
    return app.screen.query_one(NodeFieldsForm)


def fill(screen, **values: str) -> None:
    for key, value in values.items():
        widget = screen.query_one(f"#{key}")
        if isinstance(widget, Select):
            widget.value = value
        elif isinstance(widget, TextArea):
            widget.text = value
        else:
            widget.value = value


async def test_fields_are_prefilled_and_the_plan_follows_them(make_app, tui_node,
                                                              links) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        form = await open_enrollment(pilot)
        screen = app.screen
        assert screen.query_one("#hostname", Input).value == "test-node"
        # the underlay choice: the veth pair; not loopback, not the mesh-named link
        labels = dict((value, label) for label, value in form.options)
        assert sorted(labels) == sorted([links.up, links.down])
        # its peer is down, so the kernel says lowerlayerdown for the end that is up
        assert labels[links.up].startswith(f"{links.up} · lowerlayerdown · ")
        assert labels[links.up].endswith(links.up_address)
        assert labels[links.down].startswith(f"{links.down} · down · ")
        assert screen.query_one("#underlay-interface", Select).value == Select.NULL
        cpus = app.node_status.resources.cpus
        assert f"of {cpus} CPUs, {app.node_status.resources.memory_total_mb} MiB" in text_of(
            screen.query_one("#host-totals", Static))
        plan = screen.query_one("#enroll-plan", Static)
        assert f"node 'test-node' on image default (DHCP) offering all {cpus} CPUs" in \
            text_of(plan)
        # the screen's actions are in the command palette while it is shown
        await run_from_palette(pilot, "this node's fields", "Enroll: this node's fields")
        await wait_for(pilot, lambda: app.screen is screen
                       and screen.focused is screen.query_one("#hostname", Input))
        screen.set_focus(None)
        # typed from the keyboard: h jumps to the hostname
        await pilot.press("h")
        assert screen.focused is screen.query_one("#hostname", Input)
        await pilot.press(*["backspace"] * len("test-node"), *"edge-01")
        assert screen.query_one("#hostname", Input).value == "edge-01"
        await pilot.press("enter")  # moves on to the next field, never founds
        assert screen.focused is screen.query_one("#underlay-interface", Select)
        fill(screen, **{"underlay-interface": links.up, "underlay-mode": "static"})
        await wait_for(pilot, lambda: not screen.query_one("#underlay-address", Input).disabled)
        fill(screen, **{"underlay-address": "192.0.2.20/24", "underlay-gateway": "192.0.2.1",
                        "underlay-dns": "192.0.2.53", "res-cpus": "1",
                        "admin-keys": ED25519})
        await wait_for(pilot, lambda: "admin key" in text_of(plan) and "1 CPUs" in text_of(plan))
        assert (f"node 'edge-01' on {links.up} (static 192.0.2.20/24 via 192.0.2.1, DNS "
                f"192.0.2.53) offering 1 CPUs, all") in text_of(plan)
        assert "1 admin key" in text_of(plan)
        # a wrong field shows in the plan at once
        fill(screen, **{"underlay-address": ""})
        await wait_for(pilot, lambda: "not ready: underlay address" in text_of(plan))
        await pilot.press("escape")  # the way back
        await wait_for(pilot, lambda: app.screen.sub_title == "dashboard")


async def test_every_wrong_field_is_on_screen_and_nothing_is_written(make_app, tui_node,
                                                                     links) -> None:
    config = tui_node.config_file
    before = config.read_text()
    networkd_dir = tui_node.settings.underlay.networkd_dir
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_enrollment(pilot)
        screen = app.screen
        state = screen.query_one("#enroll-state", Static)
        cpus = app.node_status.resources.cpus
        fill(screen, **{"hostname": "Edge_01", "underlay-interface": links.up,
                        "underlay-mode": "static", "res-cpus": str(cpus + 1),
                        "res-memory": "999999999",
                        "admin-keys": f"{ED25519}\nssh-ed25519 AAAAnotbase64!",
                        "net-name": "Not A Name"})
        await pilot.press("f", "enter")  # found, from the network name field
        await wait_for(pilot, lambda: "not founded" in text_of(state))
        shown = text_of(state)
        assert "(nothing written)" in shown and state.has_class("-error")
        for words in ("hostname: expected lowercase letters",
                      "underlay address: a static underlay needs address/prefix",
                      f"resources CPUs: {cpus + 1} is more than this host has ({cpus})",
                      "resources memory MiB: 999999999 is more than this host has",
                      "admin SSH keys line 2: the ssh-ed25519 key is not valid base64",
                      "network name: expected"):
            assert words in shown, (words, shown)
        for field in ("#hostname", "#underlay-address", "#res-cpus", "#res-memory",
                      "#admin-keys"):
            assert screen.query_one(field).has_class("-invalid"), field
        assert not screen.query_one("#res-disk").has_class("-invalid")
        # one at a time, the rest right: the gateway, then the join path
        fill(screen, **{"hostname": "edge-01", "underlay-address": "192.0.2.20/24",
                        "underlay-gateway": "198.51.100.1", "res-cpus": "",
                        "res-memory": "", "admin-keys": ED25519, "net-name": "lab"})
        screen.found_network()
        await wait_for(pilot, lambda: "underlay gateway: 198.51.100.1 is outside "
                       "192.0.2.0/24" in text_of(state))
        assert screen.query_one("#underlay-gateway").has_class("-invalid")
        assert not screen.query_one("#hostname").has_class("-invalid")
        fill(screen, **{"underlay-gateway": "", "hostname": "-edge"})
        screen.join_network("not-a-token")
        await wait_for(pilot, lambda: "not joined" in text_of(state))
        assert "hostname: expected" in text_of(state)
        assert "expected an invite token" in text_of(state)
        # nothing was started that could still write: the checks below see all there will be
        await wait_for(pilot, lambda: screen_idle(app), what="the enrollment screen's workers")
    assert config.read_text() == before
    assert not (networkd_dir / NETWORKD_FILE).exists()
    async with client_to(tui_node) as client:
        assert (await client.call(state_routes.state_status)).network is None


async def test_founding_saves_every_field_then_founds(make_app, tui_node, links) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_enrollment(pilot)
        screen = app.screen
        fill(screen, **{"hostname": "edge-01", "underlay-interface": links.up,
                        "underlay-mode": "static"})
        await wait_for(pilot, lambda: not screen.query_one("#underlay-address", Input).disabled)
        fill(screen, **{"underlay-address": "192.0.2.20/24", "underlay-gateway": "192.0.2.1",
                        "underlay-dns": "192.0.2.53, 192.0.2.54", "res-cpus": "1",
                        "res-memory": "256", "res-disk": "1", "admin-keys": ED25519 + "\n",
                        "net-name": "lab"})
        plan = screen.query_one("#enroll-plan", Static)
        await wait_for(pilot, lambda: "then found network 'lab'" in text_of(plan))
        assert "offering 1 CPUs, 256 MiB, 1 GB" in text_of(plan)
        assert "new hostname from the next node start" in text_of(plan)
        screen.query_one("#net-name", Input).focus()
        await pilot.press("enter")
        state = screen.query_one("#enroll-state", Static)
        await wait_for(pilot, lambda: "founded network lab" in text_of(state))
        shown = text_of(state)
        assert not state.has_class("-error")
        assert f"settings written to {tui_node.config_file}" in shown
        assert "hostname (applies when the node restarts)" in shown
        assert "underlay: " in shown and "applies at the next boot" in shown
        assert "resources: offering 1 CPUs, 256 MiB of memory, 1 GB of disk" in shown
        assert shown.index("settings written") < shown.index("founded network lab")
        intro = screen.query_one("#enroll-intro", Static)
        await wait_for(pilot, lambda: "in network lab" in text_of(intro))
        assert not screen.query_one("#node-form").display
    saved = yaml.safe_load(tui_node.config_file.read_text())
    assert saved["name"] == "edge-01" and saved["admin_ssh_keys"] == [ED25519]
    assert saved["resources"] == {"cpus": 1, "memory_mb": 256, "disk_gb": 1}
    assert saved["underlay"] == {
        "networkd_dir": str(tui_node.settings.underlay.networkd_dir), "interface": links.up,
        "mode": "static", "address": "192.0.2.20/24", "gateway": "192.0.2.1",
        "dns": ["192.0.2.53", "192.0.2.54"]}
    text = (tui_node.settings.underlay.networkd_dir / NETWORKD_FILE).read_text()
    assert f"Name={links.up}" in text and "Gateway=192.0.2.1" in text
    async with client_to(tui_node) as client:
        async def my_record() -> dict | None:
            nodes = (await client.call(state_routes.state_view, collection="nodes")).items
            mine = [n for n in nodes if n["key"] == tui_node.identity.public_key_hex]
            return mine[0] if mine and mine[0].get("resources") else None

        mine = await until(my_record, 10.0)
    assert mine["resources"] == {"cpus": 1, "memory_mb": 256, "disk_gb": 1}
    assert mine["endpoints"]  # the join part's own fields are in the same record


async def test_a_node_without_a_config_file_founds_without_saving(short_tmp: Path) -> None:
    """The console's own embedded node on a laptop may run without a config file: the fields
    show what it runs with, read-only, and founding still works."""
    service = NodeService(make_settings(short_tmp))
    await service.start()
    try:
        app = FormationApp(client_factory(service), request_timeout_s=2.0, poll_s=0.5)
        async with app.run_test(size=(80, 24)) as pilot:
            form = await open_enrollment(pilot)
            screen = app.screen
            assert form.disabled and screen.query_one("#hostname", Input).value == "test-node"
            plan = screen.query_one("#enroll-plan", Static)
            await wait_for(pilot, lambda: "not saved: the node has no config file"
                           in text_of(plan))
            screen.query_one("#net-name", Input).value = "lab"
            screen.found_network()
            state = screen.query_one("#enroll-state", Static)
            await wait_for(pilot, lambda: "founded network lab" in text_of(state))
            assert "settings not saved: the node runs without a config file" in text_of(state)
    finally:
        await service.stop()


async def test_settings_screen_edits_underlay_and_resources(make_app, tui_node, links) -> None:
    """The settings screen (s) has the same node fields as enrollment: a wrong one is refused
    on screen with nothing written; right ones are saved, and underlay and resources applied
    at once (the networkd file, the node's running settings)."""
    config = tui_node.config_file
    networkd_dir = tui_node.settings.underlay.networkd_dir
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        screen = app.screen
        state = screen.query_one("#settings-state", Static)
        await wait_for(pilot, lambda: "saved in" in text_of(state)
                       and app.node_status is not None)
        form = screen.query_one(NodeFieldsForm)
        assert sorted(v for _, v in form.options) == sorted([links.up, links.down])
        before = config.read_text()
        cpus = app.node_status.resources.cpus
        fill(screen, **{"underlay-interface": links.up, "underlay-mode": "static"})
        await wait_for(pilot, lambda: not screen.query_one("#underlay-address", Input).disabled)
        fill(screen, **{"underlay-address": "192.0.2.30/24", "res-cpus": str(cpus + 1)})
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "not saved" in text_of(state))
        assert "(nothing written)" in text_of(state)
        assert f"resources CPUs: {cpus + 1} is more than this host has" in text_of(state)
        assert screen.query_one("#res-cpus").has_class("-invalid")
        assert config.read_text() == before
        assert not (networkd_dir / NETWORKD_FILE).exists()
        fill(screen, **{"res-cpus": "1"})
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "saved in" in text_of(state))
        assert not state.has_class("-error")
        assert "underlay: " in text_of(state) and "resources: offering 1 CPUs" in text_of(state)
        assert not screen.query_one("#res-cpus").has_class("-invalid")
    saved = yaml.safe_load(config.read_text())
    assert saved["resources"] == {"cpus": 1}
    assert saved["underlay"]["interface"] == links.up
    assert saved["underlay"]["address"] == "192.0.2.30/24"
    assert "Address=192.0.2.30/24" in (networkd_dir / NETWORKD_FILE).read_text()
    assert tui_node.settings.resources.cpus == 1  # applied to the running node, no restart
