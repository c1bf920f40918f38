"""The node endpoints the console uses, through the real client over the unix socket and over
signed TCP: host samples, the log ring, and settings written to the config file."""

from __future__ import annotations

import asyncio
import logging
import stat
from pathlib import Path

import pytest
import yaml
from settings_factory import make_settings

from formation.api import console_routes as cr
from formation.api.client import ApiError, NodeClient
from formation.api.console_models import LogsQuery, SettingsUpdate
from formation.node.console_support.host_sampler import read_counters, sample_between
from formation.node.console_support.settings_file import SettingsRejected, update_file
from formation.node.service import NodeService


@pytest.fixture
async def configured_node(short_tmp: Path):
    config = short_tmp / "node.yaml"
    config.write_text("# a comment\nname: test-node  # the host's name\nprobe:\n"
                      "  boot_test: false\n")
    service = NodeService(make_settings(short_tmp), config)
    await service.start()
    yield service
    await service.stop()


def test_host_sample_between_two_reads_is_sane() -> None:
    first = read_counters(now=0.0)
    second = read_counters(now=1.0)
    sample = sample_between(first, second)
    assert 0.0 <= sample.cpu_percent <= 100.0
    assert 0.0 < sample.memory_used_percent < 100.0
    assert sample.net_rx_bps >= 0 and sample.net_tx_bps >= 0


async def test_metrics_samples_arrive_as_events_and_in_history(configured_node) -> None:
    async with NodeClient.unix(configured_node.settings.api.socket) as client:
        async def first_sample():
            async for event in client.events(topic="metrics"):
                return event
        event = await asyncio.wait_for(first_sample(), 10)
        assert event.kind == "sample" and "cpu_percent" in event.data
        history = await client.call(cr.node_metrics)
    assert history.interval_s == 1.0 and len(history.samples) >= 1


async def test_log_ring_returns_new_records_after_seq(configured_node) -> None:
    async with NodeClient.unix(configured_node.settings.api.socket) as client:
        first = await client.call(cr.node_logs, query=LogsQuery())
        last = first.records[-1].seq if first.records else 0
        logging.getLogger("formation.test").warning("ring check", extra={"fields": {"n": 7}})
        newer = await client.call(cr.node_logs, query=LogsQuery(since=last))
    assert [r.message for r in newer.records] == ["ring check"]
    assert newer.records[0].fields == {"n": "7"} and newer.records[0].level == "warning"


async def test_settings_written_atomically_and_restart_flagged(configured_node) -> None:
    config = configured_node.config_file
    async with NodeClient.unix(configured_node.settings.api.socket) as client:
        before = await client.call(cr.get_settings)
        assert before.name == "test-node" and not before.restart_required
        after = await client.call(cr.update_settings, SettingsUpdate(bootstrap=["10.1.1.1:7170"]))
    assert after.restart_required and after.bootstrap == ["10.1.1.1:7170"]
    assert after.running["bootstrap"] == []
    written = yaml.safe_load(config.read_text())
    assert written == {"name": "test-node", "probe": {"boot_test": False},
                       "bootstrap": ["10.1.1.1:7170"]}
    text = config.read_text()
    assert text.startswith("# a comment\nname: test-node  # the host's name\n"), text
    assert [p.name for p in config.parent.iterdir() if p.name.startswith(".node.yaml")] == []


async def test_invalid_settings_rejected_with_field_and_file_untouched(configured_node) -> None:
    config = configured_node.config_file
    before = config.read_bytes()
    async with NodeClient.unix(configured_node.settings.api.socket) as client:
        for update, field in ((SettingsUpdate(name="Bad_Name"), "name"),
                              (SettingsUpdate(admin_ssh_keys=["not a key"]), "admin_ssh_keys.0")):
            with pytest.raises(ApiError) as caught:
                await client.call(cr.update_settings, update)
            assert caught.value.status == 400
            assert caught.value.body.fields[0].field == field
    assert config.read_bytes() == before


async def test_settings_without_config_file_is_a_clear_error(node: NodeService,
                                                              client: NodeClient) -> None:
    view = await client.call(cr.get_settings)
    assert view.config_file is None and not view.restart_required
    with pytest.raises(ApiError, match="without a config file"):
        await client.call(cr.update_settings, SettingsUpdate(name="x"))


async def test_settings_are_for_the_unix_socket_only(configured_node) -> None:
    """A member of the network (here the node's own key, which the node trusts) reaches the
    member routes over signed TCP, but not the node-local settings: on main any trusted key
    could rewrite another node's config (admin SSH keys included) with PUT /v1/settings."""
    from formation.identity.keys import NodeIdentity

    config = configured_node.config_file
    before = config.read_bytes()
    address = configured_node.listen_addresses()[1].removeprefix("tcp:")
    async with NodeClient.tcp(address, configured_node.identity) as member:
        assert (await member.call(cr.node_metrics)).interval_s > 0  # a member route answers
        for endpoint, body in ((cr.get_settings, None),
                               (cr.update_settings, SettingsUpdate(name="evil"))):
            with pytest.raises(ApiError) as refused:
                await member.call(endpoint, body)
            assert refused.value.status == 403, endpoint.name
            assert "local callers" in refused.value.body.message
    assert config.read_bytes() == before
    stranger = NodeIdentity.from_seed(b"\x07" * 32)
    async with NodeClient.tcp(address, stranger) as unknown:
        with pytest.raises(ApiError) as caught:
            await unknown.call(cr.update_settings, SettingsUpdate(name="evil"))
    assert caught.value.status == 401
    assert config.read_bytes() == before


def test_update_file_keeps_mode_and_rejects_bad_yaml(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    path.write_text("name: a\n")
    path.chmod(0o640)
    update_file(path, {"name": "b"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    path.write_text("- a list\n")
    with pytest.raises(SettingsRejected, match="expected a mapping"):
        update_file(path, {"name": "c"})
