"""The enrollment screen's node fields checked with the node's own rules: every fault named by
its field (the SSH keys by line), only what differs from the saved settings in the update, and
the plan line in words."""

from __future__ import annotations

from formation.api.console_models import EditableSettings, ResourceChoice, UnderlayChoice
from formation.api.models import Resources
from formation.tui.enroll_plan import NodeFields, NodePlan, node_plan, plan_text
from formation.tui.screens.settings import state_text

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHQ3VHtx7IBiyX8a2VKkZ0Gn0XxLr9bWqkzWq4L3BcBp admin"
HOST = Resources(cpus=4, memory_total_mb=8192, memory_available_mb=4096, disk_total_gb=100.4,
                 disk_free_gb=50.0, load_1m=0.1)


def fields(**changes: str | None) -> NodeFields:
    base = dict(hostname="edge-01", interface=None, mode="dhcp", address="", gateway="",
                dns="", cpus="", memory_mb="", disk_gb="", keys="")
    return NodeFields(**{**base, **changes})  # type: ignore[arg-type]


def saved(**changes) -> EditableSettings:
    base = dict(config_file="/etc/formation/node.yaml", name="edge-01", bootstrap=[],
                admin_ssh_keys=[], running={"name": "edge-01"}, restart_required=False)
    return EditableSettings(**{**base, **changes})


def test_unchanged_fields_make_an_empty_update() -> None:
    plan = node_plan(fields(), saved(), HOST)
    assert isinstance(plan, NodePlan) and plan.update.model_fields_set == set()
    assert plan_text(plan, saved(), HOST) == (
        "node 'edge-01' on image default (DHCP) offering all 4 CPUs, all 8192 MiB, all 100 GB; "
        "0 admin keys")


def test_changed_fields_only_are_in_the_update() -> None:
    plan = node_plan(fields(hostname="edge-02", interface="eth0", mode="static",
                            address="10.0.0.5/24", gateway="10.0.0.1", dns="9.9.9.9, 1.1.1.1",
                            cpus="2", keys=f"\n{KEY}\n\n"), saved(), HOST)
    assert isinstance(plan, NodePlan)
    assert plan.update.model_fields_set == {"name", "underlay", "resources", "admin_ssh_keys"}
    assert plan.update.underlay == UnderlayChoice(interface="eth0", mode="static",
                                                  address="10.0.0.5/24", gateway="10.0.0.1",
                                                  dns=["9.9.9.9", "1.1.1.1"])
    assert plan.update.resources == ResourceChoice(cpus=2)
    assert plan.update.admin_ssh_keys == [KEY]
    assert plan_text(plan, saved(), HOST) == (
        "node 'edge-02' on eth0 (static 10.0.0.5/24 via 10.0.0.1, DNS 9.9.9.9 1.1.1.1) "
        "offering 2 CPUs, all 8192 MiB, all 100 GB; 1 admin key (new hostname from the next "
        "node start)")


def test_dhcp_ignores_the_static_fields() -> None:
    plan = node_plan(fields(interface="eth0", address="junk", gateway="junk"), saved(), HOST)
    assert isinstance(plan, NodePlan) and plan.underlay.address is None


def test_every_fault_names_its_field() -> None:
    errors = node_plan(fields(hostname="Edge_01", interface="eth0", mode="static",
                              cpus="5", memory_mb="9000", disk_gb="0",
                              keys=f"{KEY}\nssh-ed25519 AAAAnotbase64!\nssh-dss AAAA"),
                       saved(), HOST)
    assert isinstance(errors, list)
    assert errors[0].startswith("hostname: expected lowercase letters")
    assert "underlay address: a static underlay needs address/prefix, e.g. 10.0.0.5/24" in errors
    assert "resources disk GB: Input should be greater than or equal to 1" in errors
    assert "admin SSH keys line 2: the ssh-ed25519 key is not valid base64" in errors
    assert any(e.startswith("admin SSH keys line 3: unknown SSH key type 'ssh-dss'")
               for e in errors)
    # the host's totals are checked once the figures themselves are valid
    errors = node_plan(fields(cpus="5", memory_mb="9000", disk_gb="101"), saved(), HOST)
    assert errors == ["resources CPUs: 5 is more than this host has (4)",
                      "resources memory MiB: 9000 is more than this host has (8192)",
                      "resources disk GB: 101 is more than this host has (100)"]
    assert node_plan(fields(cpus="x"), saved(), HOST) == [
        "resources CPUs: expected a whole number, or nothing for all the host has (got 'x')"]
    assert node_plan(fields(interface="eth0", mode="static", address="10.0.0.5/24",
                            gateway="10.1.0.1"), saved(), HOST) == [
        "underlay gateway: 10.1.0.1 is outside 10.0.0.0/24, the static address's network"]


def test_without_a_config_file_nothing_is_to_save() -> None:
    plan = node_plan(fields(hostname="other"), None, None)
    assert isinstance(plan, NodePlan) and plan.update.model_fields_set == set()
    assert plan_text(plan, None, None).endswith(
        "offering all CPUs, all MiB, all GB; 0 admin keys (not saved: the node has no config "
        "file)")


def test_settings_screen_names_only_what_differs_from_the_running_node() -> None:
    current = saved(name="edge-02", restart_required=True, running={
        "name": "edge-01", "bootstrap": [], "admin_ssh_keys": [],
        "underlay": UnderlayChoice().model_dump(mode="json"),
        "resources": ResourceChoice().model_dump(mode="json")})
    assert state_text(current).startswith("[b]restart the node to apply[/b] name (saved in")
