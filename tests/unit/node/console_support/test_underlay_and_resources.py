"""PUT /v1/settings with the underlay and resources sections, on a real node: both are applied
at once (the networkd file written, the running settings and the node record updated), a
section replaces what the file had, and what the host cannot give or a wrong combination is
refused naming the field, with nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from settings_factory import make_settings
from waiting import until

from formation.api import console_routes as cr
from formation.api import state_routes as sr
from formation.api.client import ApiError, NodeClient
from formation.api.console_models import ResourceChoice, SettingsUpdate, UnderlayChoice
from formation.api.state_models import CreateNetworkRequest
from formation.node.service import NodeService


@pytest.fixture
async def node_with_networkd_dir(short_tmp: Path):
    networkd = {"networkd_dir": str(short_tmp / "networkd")}
    config = short_tmp / "node.yaml"
    config.write_text("name: test-node\nunderlay:\n  networkd_dir: " + networkd["networkd_dir"]
                      + "  # tests: never the host's\n")
    service = NodeService(make_settings(short_tmp, underlay=networkd), config)
    await service.start()
    yield service
    await service.stop()


def networkd_file(service: NodeService) -> Path:
    return service.settings.underlay.networkd_dir / "10-formation-underlay.network"


async def test_underlay_and_resources_apply_at_once(node_with_networkd_dir) -> None:
    node = node_with_networkd_dir
    static = UnderlayChoice(interface="eth0", mode="static", address="10.0.0.5/24",
                            gateway="10.0.0.1", dns=["10.0.0.53"])
    async with NodeClient.unix(node.settings.api.socket) as client:
        saved = await client.call(cr.update_settings, SettingsUpdate(
            underlay=static, resources=ResourceChoice(cpus=1, memory_mb=128)))
        assert saved.underlay == static and saved.resources.cpus == 1
        assert not saved.restart_required  # both sections run now
        assert saved.applied[0].startswith(f"underlay: {networkd_file(node)} written")
        assert "applies at the next boot" in saved.applied[0]
        assert "offering 1 CPUs, 128 MiB of memory" in saved.applied[1]
        assert node.settings.resources.cpus == 1 and node.settings.underlay.interface == "eth0"
        assert "Address=10.0.0.5/24" in networkd_file(node).read_text()
        text = node.config_file.read_text()
        assert "# tests: never the host's" in text  # the file's comment survives
        in_file = yaml.safe_load(text)
        assert in_file["underlay"]["address"] == "10.0.0.5/24"
        assert in_file["underlay"]["networkd_dir"] == str(networkd_file(node).parent)
        # the node record offers what was set, the rest from the host
        await client.call(sr.state_create_network, CreateNetworkRequest(name="lab"))

        async def offered():
            nodes = (await client.call(sr.state_view, collection="nodes")).items
            mine = [n for n in nodes if n["key"] == node.identity.public_key_hex]
            return mine[0].get("resources") if mine else None

        offer = await until(offered, 10.0)
        assert offer["cpus"] == 1 and offer["memory_mb"] == 128
        assert offer["disk_gb"] >= 1  # all the host has
        # a section replaces the old one: DHCP drops the static address and gateway
        saved = await client.call(cr.update_settings, SettingsUpdate(
            underlay=UnderlayChoice(interface="eth0")))
        in_file = yaml.safe_load(node.config_file.read_text())["underlay"]
        assert "address" not in in_file and "gateway" not in in_file
        assert "DHCP=yes" in networkd_file(node).read_text()
        # no interface: the file goes, the image's default DHCP is in charge again
        saved = await client.call(cr.update_settings, SettingsUpdate(underlay=UnderlayChoice()))
        assert not networkd_file(node).exists() and "removed" in saved.applied[0]


@pytest.mark.parametrize(("update", "field", "words"), [
    (SettingsUpdate(resources=ResourceChoice(cpus=(os.cpu_count() or 1) + 1)),
     "resources.cpus", "more than this host has"),
    (SettingsUpdate(resources=ResourceChoice(memory_mb=10**9)),
     "resources.memory_mb", "more than this host has"),
    # built past the client's own check: the node must refuse it too
    (SettingsUpdate(resources=ResourceChoice.model_construct(disk_gb=0)), "resources.disk_gb",
     "greater than or equal to 1"),
    (SettingsUpdate(underlay=UnderlayChoice(interface="eth0", mode="static")),
     "underlay.address", "needs address/prefix"),
    (SettingsUpdate(name="ok-name", underlay=UnderlayChoice(interface="eth0", mode="static",
                                                            address="10.0.0.5/24",
                                                            gateway="192.168.1.1")),
     "underlay.gateway", "outside 10.0.0.0/24"),
])
async def test_refused_naming_the_field_and_nothing_written(node_with_networkd_dir, update,
                                                            field, words) -> None:
    node = node_with_networkd_dir
    before = node.config_file.read_text()
    async with NodeClient.unix(node.settings.api.socket) as client:
        with pytest.raises(ApiError) as info:
            await client.call(cr.update_settings, update)
    body = info.value.body
    assert info.value.status == 400 and body.fields[0].field == field
    assert words in body.fields[0].message and field in body.message
    assert node.config_file.read_text() == before and not networkd_file(node).exists()
    assert node.settings.resources.cpus is None  # the running settings did not change
