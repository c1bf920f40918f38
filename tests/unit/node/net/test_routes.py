"""Which address another node's API is reached at: its mesh address while this node has its
own and a live session with that peer, its underlay address otherwise."""

from __future__ import annotations

import base64

from formation.identity import node_id_for
from formation.node.net.peers import InterfaceStatus, PeerStatus
from formation.node.net.routes import FRESH_HANDSHAKE_S, MeshRoutes
from formation.node.net.underlay import wg_endpoints

NOW = 1_700_000_000.0
B, C = "b" * 64, "c" * 64  # node keys (hex)


def wg(n: int) -> str:
    return base64.b64encode(bytes([n]) * 32).decode()


def routes(up: bool = True, b_age: float | None = 3.0) -> MeshRoutes:
    peers = [PeerStatus(wg(2), "192.0.2.2:51820", latest_handshake=NOW - b_age if b_age
                        is not None else 0.0),
             PeerStatus(wg(3), "192.0.2.3:51820", latest_handshake=NOW - 1.0)]
    table = MeshRoutes()
    table.refresh(InterfaceStatus("formnet0", wg(1), 51820, tuple(peers)),
                  {wg(2): B, wg(3): C}, {B: "10.42.0.2"}, up, now=NOW)
    return table


def test_a_peer_with_a_live_session_is_reached_on_its_mesh_address() -> None:
    assert routes().api_address(B, "192.0.2.2:7170") == "10.42.0.2:7170"


def test_the_underlay_until_the_mesh_reaches_the_peer() -> None:
    assert routes(up=False).api_address(B, "192.0.2.2:7170") == "192.0.2.2:7170"
    assert routes(b_age=None).api_address(B, "192.0.2.2:7170") == "192.0.2.2:7170"
    stale = routes(b_age=FRESH_HANDSHAKE_S + 1)
    assert stale.api_address(B, "192.0.2.2:7170") == "192.0.2.2:7170"
    # a live session but no mesh address in the state (yet): nowhere to send on the mesh
    assert routes().api_address(C, "192.0.2.3:7170") == "192.0.2.3:7170"
    assert routes().api_address("d" * 64, "192.0.2.4:7170") == "192.0.2.4:7170"


def test_handshake_ages_by_node_id() -> None:
    table = routes()
    assert table.ages_by_node_id == {node_id_for(bytes.fromhex(B)): 3.0,
                                       node_id_for(bytes.fromhex(C)): 1.0}


def test_wg_endpoints_follow_the_current_underlay_addresses() -> None:
    api = ["192.0.2.1:7170"]
    assert wg_endpoints(api, [], 51820, ["198.51.100.7", "192.0.2.1"]) \
        == ["192.0.2.1:51820", "198.51.100.7:51820"]  # the address peers know first
    assert wg_endpoints(api, [], 51820, ["198.51.100.7"]) == ["198.51.100.7:51820"]  # moved
    assert wg_endpoints(["127.0.0.1:7170"], [], 51820, []) == ["127.0.0.1:51820"]
    assert wg_endpoints(api, ["203.0.113.9:4000"], 51820, ["198.51.100.7"]) \
        == ["203.0.113.9:4000"]
