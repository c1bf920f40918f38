"""The underlay setting: its cross-field rules (each error naming the field), the networkd file
it renders, and how that file is written (atomically, only when it changes, removed when no
interface is chosen)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from formation.config.settings import NodeSettings, Underlay, UnderlaySettings
from formation.node.console_support.settings_file import SettingsRejected, validate
from formation.node.host_network import networkd


def test_dhcp_renders_a_match_on_the_interface() -> None:
    text = networkd.render(Underlay(interface="eth0", dns=["9.9.9.9", "1.1.1.1"]))
    assert text is not None
    lines = text.splitlines()
    assert lines[0].startswith("# Written by formation")
    assert lines[1:] == ["[Match]", "Name=eth0", "", "[Network]", "DHCP=yes", "DNS=9.9.9.9",
                         "DNS=1.1.1.1", "LinkLocalAddressing=yes"]


def test_static_renders_address_gateway_and_dns() -> None:
    text = networkd.render(Underlay(interface="enp1s0", mode="static", address="10.0.0.5/24",
                                    gateway="10.0.0.1", dns=["10.0.0.53"]))
    assert text is not None
    assert "\n[Network]\nAddress=10.0.0.5/24\nGateway=10.0.0.1\nDNS=10.0.0.53\n" in text
    assert "DHCP" not in text


def test_no_interface_renders_nothing() -> None:
    assert networkd.render(Underlay()) is None


@pytest.mark.parametrize(("data", "field", "words"), [
    ({"interface": "eth0", "mode": "static"}, "address", "needs address/prefix"),
    ({"interface": "eth0", "mode": "static", "address": "10.0.0.5/24", "gateway": "10.0.1.1"},
     "gateway", "outside 10.0.0.0/24"),
    ({"interface": "eth0", "mode": "static", "address": "10.0.0.5/24", "gateway": "10.0.0.5"},
     "gateway", "another host than the address"),
    ({"interface": "eth0", "gateway": "10.0.0.1"}, "gateway", "only for mode static"),
    ({"mode": "static", "address": "10.0.0.5/24"}, "interface", "expected the interface"),
    ({"interface": "eth0", "mode": "static", "address": "10.0.0.5"}, "address",
     "address with prefix"),
    ({"interface": "not an interface name"}, "interface", "network interface name"),
    ({"interface": "eth0", "dns": ["dns.example"]}, "dns.0", "expected an IP address"),
])
def test_bad_underlays_name_the_field(data: dict, field: str, words: str) -> None:
    with pytest.raises(ValidationError):
        Underlay.model_validate(data)
    with pytest.raises(SettingsRejected) as info:  # as the node reports a file or an update
        validate({"underlay": data})
    assert info.value.fields[0][0] == f"underlay.{field}"
    assert words in info.value.fields[0][1]


def test_resources_offered_are_positive() -> None:
    with pytest.raises(SettingsRejected) as info:
        validate({"resources": {"cpus": 0, "memory_mb": 10}})
    assert [f for f, _ in info.value.fields] == ["resources.cpus", "resources.memory_mb"]
    assert NodeSettings.model_validate({"resources": {"cpus": 2}}).resources.disk_gb is None


def test_write_is_atomic_idempotent_and_removes_when_unset(tmp_path: Path) -> None:
    chosen = UnderlaySettings(interface="eth0", networkd_dir=tmp_path / "network")
    path, changed = networkd.write(chosen)
    assert changed and path == tmp_path / "network" / "10-formation-underlay.network"
    assert path.read_text() == networkd.render(chosen)
    assert path.stat().st_mode & 0o777 == 0o644
    assert networkd.write(chosen) == (path, False)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left over
    path2, changed = networkd.write(UnderlaySettings(networkd_dir=tmp_path / "network"))
    assert path2 == path and changed and not path.exists()
    assert networkd.write(UnderlaySettings(networkd_dir=tmp_path / "network"))[1] is False


async def test_apply_without_networkd_says_next_boot(tmp_path: Path) -> None:
    """This machine runs no systemd-networkd (no systemd at all in the container)."""
    applied = await networkd.apply(UnderlaySettings(interface="eth0", mode="static",
                                                    address="10.0.0.5/24",
                                                    networkd_dir=tmp_path))
    assert applied.changed and "applies at the next boot" in applied.detail
    again = await networkd.apply(UnderlaySettings(interface="eth0", mode="static",
                                                  address="10.0.0.5/24", networkd_dir=tmp_path))
    assert not again.changed and "already says this" in again.detail
