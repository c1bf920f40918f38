"""The kernel backend's conversions, through pyroute2's own netlink encoder and decoder. The
kernel itself is not involved (this machine has no WireGuard module)."""

from __future__ import annotations

import base64

from pyroute2.netlink.generic.wireguard import wgmsg

from formation.node.net.peers import PeerConfig
from formation.node.net.wgkernel import netlink_peer, status_from_netlink

KEY = base64.b64encode(bytes([3]) * 32).decode()
OTHER = base64.b64encode(bytes([4]) * 32).decode()


def test_netlink_peer_shape() -> None:
    peer = PeerConfig(KEY, "[fd00::2]:51820", ("10.88.0.2/32",), 25)
    assert netlink_peer(peer) == {
        "public_key": KEY, "persistent_keepalive": 25, "replace_allowed_ips": True,
        "allowed_ips": ["10.88.0.2/32"], "endpoint_addr": "fd00::2", "endpoint_port": 51820,
    }
    assert "endpoint_addr" not in netlink_peer(PeerConfig(KEY))


def test_status_from_a_decoded_device_dump() -> None:
    msg = wgmsg()
    msg["cmd"] = 0
    msg["version"] = 1
    allowed = [{"attrs": [["WGALLOWEDIP_A_FAMILY", 2], ["WGALLOWEDIP_A_IPADDR",
                                                          bytes([10, 88, 2, 0])],
                          ["WGALLOWEDIP_A_CIDR_MASK", 24]]}]
    msg["attrs"] = [
        ["WGDEVICE_A_IFNAME", "formnet0"], ["WGDEVICE_A_LISTEN_PORT", 51820],
        ["WGDEVICE_A_PUBLIC_KEY", KEY],
        ["WGDEVICE_A_PEERS", [{"attrs": [
            ["WGPEER_A_PUBLIC_KEY", OTHER],
            ["WGPEER_A_ENDPOINT", {"addr": "198.18.0.2", "port": 51820}],
            ["WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL", 25],
            ["WGPEER_A_LAST_HANDSHAKE_TIME", {"tv_sec": 1700000000, "tv_nsec": 0}],
            ["WGPEER_A_RX_BYTES", 7], ["WGPEER_A_TX_BYTES", 8],
            ["WGPEER_A_ALLOWEDIPS", allowed],
        ]}]],
    ]
    msg.encode()
    decoded = wgmsg(msg.data)
    decoded.decode()
    status = status_from_netlink("formnet0", [decoded])
    assert status.public_key == KEY and status.listen_port == 51820
    (peer,) = status.peers
    assert peer.public_key == OTHER and peer.endpoint == "198.18.0.2:51820"
    assert peer.allowed_ips == ("10.88.2.0/24",)
    assert (peer.latest_handshake, peer.rx_bytes, peer.tx_bytes) == (1700000000.0, 7, 8)
    assert peer.persistent_keepalive == 25
