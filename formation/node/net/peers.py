"""What a WireGuard peer is, in the words both backends share. Keys are base64 (as `wg` prints
them); the UAPI wants hex and netlink wants raw bytes, and each backend converts at its edge."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from dataclasses import dataclass, field


class WireGuardError(Exception):
    """A WireGuard operation failed; the message says which and why."""


def key_to_hex(key_b64: str) -> str:
    try:
        raw = base64.b64decode(key_b64, validate=True)
    except binascii.Error:
        raise WireGuardError(f"not a base64 WireGuard key: {key_b64!r}") from None
    if len(raw) != 32:
        raise WireGuardError(f"a WireGuard key is 32 bytes, got {len(raw)}: {key_b64!r}")
    return raw.hex()


def key_from_hex(key_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(key_hex)).decode()


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """`1.2.3.4:51820` or `[fd00::1]:51820` -> (host, port). Raises WireGuardError."""
    host, sep, port = endpoint.rpartition(":")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        number = -1
    if not sep or not 0 < number < 65536:
        raise WireGuardError(f"endpoint {endpoint!r}: expected IP:PORT or [IPv6]:PORT")
    return host, number


def join_endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def normalize_allowed_ips(cidrs: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Canonical, sorted, deduplicated: two equal sets compare equal whatever their spelling."""
    try:
        nets = {ipaddress.ip_network(c, strict=False) for c in cidrs}
    except ValueError as exc:
        raise WireGuardError(f"allowed IPs: {exc}") from None
    return tuple(str(n) for n in sorted(nets, key=lambda n: (n.version, n)))


@dataclass(frozen=True)
class PeerConfig:
    """The configuration of one peer: what `set_peer` applies."""

    public_key: str
    endpoint: str | None = None
    allowed_ips: tuple[str, ...] = ()
    persistent_keepalive: int = 0

    def __post_init__(self) -> None:
        key_to_hex(self.public_key)
        if self.endpoint is not None:
            split_endpoint(self.endpoint)
        object.__setattr__(self, "allowed_ips", normalize_allowed_ips(self.allowed_ips))
        if not 0 <= self.persistent_keepalive < 65536:
            raise WireGuardError("persistent keepalive: expected 0..65535 seconds")


@dataclass(frozen=True)
class PeerStatus:
    """One peer as the interface reports it. `latest_handshake` is Unix seconds, 0 for never."""

    public_key: str
    endpoint: str | None = None
    allowed_ips: tuple[str, ...] = ()
    persistent_keepalive: int = 0
    latest_handshake: float = 0.0
    rx_bytes: int = 0
    tx_bytes: int = 0

    def config(self) -> PeerConfig:
        return PeerConfig(self.public_key, self.endpoint, self.allowed_ips,
                          self.persistent_keepalive)


@dataclass(frozen=True)
class InterfaceStatus:
    name: str
    public_key: str | None
    listen_port: int
    peers: tuple[PeerStatus, ...] = field(default_factory=tuple)

    def peer(self, public_key: str) -> PeerStatus | None:
        return next((p for p in self.peers if p.public_key == public_key), None)
