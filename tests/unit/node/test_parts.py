"""node/parts.py, the one place the node's parts are built: every part starts after the parts it
is given, the parts that send to peers read the routes the mesh writes, the host's underlay
watch is given where what is advertised follows it, and a running node's parts use each other
(not copies found by scanning)."""

from __future__ import annotations

import base64
from dataclasses import fields
from pathlib import Path

from settings_factory import make_settings

from formation.node.net.peers import InterfaceStatus, PeerStatus
from formation.node.parts import Parts, build_parts
from formation.node.service import NodeService

NOW = 1_700_000_000.0
KEY = "b" * 64


def test_every_part_starts_after_the_parts_it_is_given(short_tmp: Path) -> None:
    parts = build_parts(make_settings(short_tmp, api={"listen": "0.0.0.0:0"}))
    order = parts.in_start_order()
    assert order == [getattr(parts, f.name) for f in fields(Parts)]
    given = 0
    for index, part in enumerate(order):
        for value in vars(part).values():
            later = [p.name for p in order[index:] if p is value]
            assert later == [], f"{part.name} is given {later}, which starts after it"
            given += any(p is value for p in order[:index])
    assert given >= 8  # the graph is there: e.g. join is given discovery and state


def test_parts_that_send_to_peers_read_the_routes_the_mesh_writes(short_tmp: Path) -> None:
    parts = build_parts(make_settings(short_tmp))
    assert parts.join.peer_address(KEY, "192.0.2.2:7170") == "192.0.2.2:7170"  # no mesh yet
    wg_key, own = (base64.b64encode(bytes([n]) * 32).decode() for n in (2, 1))
    status = InterfaceStatus("formnet0", own, 51820, (
        PeerStatus(wg_key, "192.0.2.2:51820", latest_handshake=NOW - 3.0),))
    parts.mesh.routes.refresh(status, {wg_key: KEY}, {KEY: "10.42.0.2"}, True, now=NOW)
    assert parts.join.peer_address(KEY, "192.0.2.2:7170") == "10.42.0.2:7170"
    assert parts.p2p.routes is parts.mesh.routes


def test_the_underlay_is_followed_only_where_it_is_what_is_advertised(short_tmp: Path) -> None:
    everywhere = build_parts(make_settings(short_tmp, api={"listen": "0.0.0.0:0"}))
    watch = everywhere.underlay
    assert everywhere.mesh.underlay is watch
    for part in (everywhere.discovery, everywhere.p2p, everywhere.join):
        assert part._underlay is watch, part.name
    one_address = build_parts(make_settings(short_tmp, api={"listen": "127.0.0.1:0"}))
    assert one_address.mesh.underlay is one_address.underlay  # wg_endpoints always follow it
    for part in (one_address.discovery, one_address.p2p, one_address.join):
        assert part._underlay is None, part.name


async def test_a_running_node_is_its_parts(node: NodeService) -> None:
    parts = node.parts
    assert parts is not None and node.components == parts.in_start_order()
    store = parts.state.require_store()
    assert parts.join.store is store and parts.dns.state is parts.state
    assert parts.join.discovery is parts.discovery and parts.p2p.discovery is parts.discovery
    assert parts.discovery.network() == "unenrolled"  # discovery tells the state's network
    await store.create_network("lab", "10.42.0.0/16")
    assert parts.discovery.network() == store.network_id.hex()  # type: ignore[union-attr]
