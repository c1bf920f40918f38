"""The kernel backend: a `wireguard` link made through rtnetlink and configured through the
WireGuard generic netlink family (pyroute2's AsyncWireGuard). Used where the capability probe
found the module. This development machine has none: only the conversions and the clear error
on a host without the module are exercised by the tests here."""

from __future__ import annotations

import errno as errnos

from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic.wireguard import AsyncWireGuard

from formation.node.net import links
from formation.node.net.backend_links import LinkMixin
from formation.node.net.host import LOCAL_HOST, NetHost
from formation.node.net.peers import (
    InterfaceStatus,
    PeerConfig,
    PeerStatus,
    WireGuardError,
    join_endpoint,
    split_endpoint,
)


def netlink_peer(peer: PeerConfig) -> dict:
    """A PeerConfig in the shape AsyncWireGuard.set expects; allowed IPs replaced, per peer."""
    found: dict = {
        "public_key": peer.public_key,
        "persistent_keepalive": peer.persistent_keepalive,
        "replace_allowed_ips": True,
        "allowed_ips": list(peer.allowed_ips),
    }
    if peer.endpoint is not None:
        found["endpoint_addr"], found["endpoint_port"] = split_endpoint(peer.endpoint)
    return found


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def peer_from_netlink(attr) -> PeerStatus:
    endpoint = attr.get_attr("WGPEER_A_ENDPOINT")
    handshake = attr.get_attr("WGPEER_A_LAST_HANDSHAKE_TIME")
    seconds = handshake["tv_sec"] + handshake["tv_nsec"] / 1e9 if handshake else 0.0
    allowed = attr.get_attr("WGPEER_A_ALLOWEDIPS") or []
    return PeerStatus(
        public_key=_text(attr.get_attr("WGPEER_A_PUBLIC_KEY")) or "",
        endpoint=join_endpoint(endpoint["addr"], endpoint["port"]) if endpoint else None,
        allowed_ips=tuple(a["addr"] for a in allowed if "addr" in a),
        persistent_keepalive=attr.get_attr("WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL") or 0,
        latest_handshake=seconds,
        rx_bytes=attr.get_attr("WGPEER_A_RX_BYTES") or 0,
        tx_bytes=attr.get_attr("WGPEER_A_TX_BYTES") or 0,
    )


def status_from_netlink(name: str, messages: list) -> InterfaceStatus:
    """A device dump may span several messages (many peers); the device fields repeat."""
    public_key, port = None, 0
    peers: list[PeerStatus] = []
    for msg in messages:
        key = msg.get_attr("WGDEVICE_A_PUBLIC_KEY")
        public_key = _text(key) if key else public_key
        port = msg.get_attr("WGDEVICE_A_LISTEN_PORT") or port
        peers.extend(peer_from_netlink(p) for p in msg.get_attr("WGDEVICE_A_PEERS") or [])
    return InterfaceStatus(name=name, public_key=public_key, listen_port=port,
                           peers=tuple(peers))


class KernelWireGuardBackend(LinkMixin):
    kind = "kernel"

    def __init__(self, name: str, host: NetHost = LOCAL_HOST) -> None:
        self.name = name
        self.host = host
        self._init_links()

    def _genl(self) -> AsyncWireGuard:
        if self.host.netns:
            return AsyncWireGuard(netns=self.host.netns, flags=0)  # never create the netns
        return AsyncWireGuard()

    async def _set(self, **kwargs) -> None:
        wg = self._genl()
        try:
            await wg.setup_endpoint()
            await wg.set(self.name, **kwargs)
        except NetlinkError as exc:
            raise WireGuardError(f"wireguard netlink set on {self.name} failed: {exc}") from None
        finally:
            wg.close()

    async def create(self, private_key: str, listen_port: int) -> None:
        if await links.link_index(self.host, self.name) is None:
            async with self.host.iproute() as ipr:
                try:
                    await ipr.link("add", ifname=self.name, kind="wireguard")
                except NetlinkError as exc:
                    if exc.code == errnos.EOPNOTSUPP:
                        raise WireGuardError(
                            "this kernel has no WireGuard module (link kind 'wireguard' is not "
                            "supported): use the wireguard-go backend") from None
                    raise WireGuardError(f"cannot create {self.name}: {exc}") from None
        await self._set(private_key=private_key, listen_port=listen_port)
        await links.set_up(self.host, self.name)

    async def set_peer(self, peer: PeerConfig) -> None:
        await self._set(peer=netlink_peer(peer))

    async def remove_peer(self, public_key: str) -> None:
        await self._set(peer={"public_key": public_key, "remove": True})

    async def status(self) -> InterfaceStatus:
        wg = self._genl()
        try:
            await wg.setup_endpoint()
            messages = [m async for m in await wg.info(self.name)]
        except NetlinkError as exc:
            raise WireGuardError(f"wireguard netlink get on {self.name} failed: {exc}") from None
        finally:
            wg.close()
        return status_from_netlink(self.name, messages)

    async def delete(self) -> None:
        await links.delete_link(self.host, self.name)
