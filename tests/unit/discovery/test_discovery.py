"""mDNS records, where mDNS is advertised, and the peer table's rules."""

from __future__ import annotations

import pytest

from formation.api.discovery_models import Hello
from formation.config.settings import NodeSettings
from formation.discovery.component import mdns_addresses
from formation.discovery.mdns import parse_txt, txt_record
from formation.discovery.peers import PeerTable
from formation.identity import NodeIdentity
from formation.node.net.underlay_watch import follows_underlay

IDENT = NodeIdentity.generate()


def _hello(**change) -> Hello:
    base = dict(node_id=IDENT.node_id, name="h1", public_key=IDENT.public_key_hex,
                network="unenrolled", api_port=7170, version="0.1.0")
    return Hello(**(base | change))


def test_txt_record_round_trips_and_fits_a_packet():
    record = txt_record(_hello())
    assert parse_txt(record) == _hello()
    assert all(len(f"{k}={v}") < 255 for k, v in record.items())


@pytest.mark.parametrize("change", [
    {"id": NodeIdentity.generate().node_id},  # an id that is not its key's
    {"port": "seventy"},
    {"pk": "zz"},
])
def test_malformed_records_are_ignored(change):
    assert parse_txt(txt_record(_hello()) | change) is None
    assert parse_txt({"id": IDENT.node_id}) is None


@pytest.mark.parametrize("settings, addresses, reason", [
    ({"api": {"listen": "10.77.0.11:7170"}}, ["10.77.0.11"], ""),
    ({"api": {"listen": "127.0.0.1:0"}}, [], "off: api.listen is on loopback"),
    ({}, [], "off: no api.listen, so no other host could reach this node"),
    ({"api": {"listen": "127.0.0.1:0"}, "discovery": {"addresses": ["10.1.2.3"]}},
     ["10.1.2.3"], ""),
    ({"api": {"listen": "10.0.0.1:1"}, "discovery": {"mdns": False}}, [],
     "off (discovery.mdns: false)"),
])
def test_mdns_is_advertised_where_the_api_listens(settings, addresses, reason):
    assert mdns_addresses(NodeSettings.model_validate(settings)) == (addresses, reason)


@pytest.mark.parametrize("settings, follows", [
    ({"api": {"listen": "0.0.0.0:7170"}}, True),
    ({"api": {"listen": "0.0.0.0:7170"}, "discovery": {"addresses": ["10.1.2.3"]}}, False),
    ({"api": {"listen": "10.0.0.1:7170"}}, False),
    ({}, False),
])
def test_an_api_on_every_address_advertises_the_hosts_addresses(settings, follows):
    parsed = NodeSettings.model_validate(settings)
    assert follows_underlay(parsed) is follows
    if follows:
        assert mdns_addresses(parsed, ["10.0.0.7", "10.9.0.1"]) == (["10.0.0.7", "10.9.0.1"], "")
        assert mdns_addresses(parsed, []) == ([], "off: no IPv4 interface address")


def test_settings_name_the_bad_field():
    with pytest.raises(ValueError, match="expected an IPv4 address"):
        NodeSettings.model_validate({"discovery": {"addresses": ["fe80::1"]}})
    with pytest.raises(ValueError, match="heartbeat_s < suspect_after_s <= dead_after_s"):
        NodeSettings.model_validate({"membership": {"suspect_after_s": 5, "dead_after_s": 4}})


def test_peer_table_sources_keys_and_events():
    events = []
    table = PeerTable(self_id="me")
    table.listen(lambda kind, record: events.append((kind, record.node_id)))
    other = NodeIdentity.generate()
    assert table.observe("mdns", "me", "k", "a:1") is None  # never itself
    table.observe("mdns", other.node_id, other.public_key_hex, "10.0.0.2:7170", name="h2")
    table.observe("gossip", other.node_id, other.public_key_hex, "10.0.0.2:7170")
    impostor = table.observe("mdns", other.node_id, "ff" * 32, "10.6.6.6:1")
    assert impostor.address == "10.0.0.2:7170" and impostor.public_key == other.public_key_hex
    table.forget_source(other.node_id, "mdns")
    assert table.get(other.node_id).sources == {"gossip"}
    table.forget_source(other.node_id, "gossip")
    assert table.get(other.node_id) is None
    assert events == [("found", other.node_id), ("updated", other.node_id),
                      ("updated", other.node_id), ("lost", other.node_id)]
