"""The cross-platform WireGuard UAPI (wireguard.com/xplatform): a text protocol on a unix socket.
A request is `get=1` or `set=1` followed by `key=value` lines and an empty line; the answer ends
with `errno=N` and an empty line. Keys travel in hex. One connection per request, like `wg`."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from formation.node.net.peers import (
    InterfaceStatus,
    PeerConfig,
    PeerStatus,
    WireGuardError,
    key_from_hex,
    key_to_hex,
)

TIMEOUT_S = 5.0


class UapiError(WireGuardError):
    def __init__(self, operation: str, errno: int) -> None:
        name = os.strerror(errno) if errno > 0 else "unknown error"
        super().__init__(f"wireguard {operation} failed: errno {errno} ({name})")
        self.errno = errno


def peer_lines(peer: PeerConfig) -> list[str]:
    """The `set` lines that make one peer exactly `peer`, touching no other peer."""
    lines = [f"public_key={key_to_hex(peer.public_key)}"]
    if peer.endpoint is not None:
        lines.append(f"endpoint={peer.endpoint}")
    lines.append(f"persistent_keepalive_interval={peer.persistent_keepalive}")
    lines.append("replace_allowed_ips=true")
    lines.extend(f"allowed_ip={cidr}" for cidr in peer.allowed_ips)
    return lines


def remove_peer_lines(public_key: str) -> list[str]:
    return [f"public_key={key_to_hex(public_key)}", "remove=true"]


def parse_get(name: str, lines: list[str]) -> InterfaceStatus:
    """Turns the `key=value` lines of a `get=1` answer into an InterfaceStatus."""
    device: dict[str, str] = {}
    peers: list[dict] = []
    for line in lines:
        key, _, value = line.partition("=")
        if key == "public_key":
            peers.append({"public_key": value, "allowed_ips": []})
        elif not peers:
            device[key] = value
        elif key == "allowed_ip":
            peers[-1]["allowed_ips"].append(value)
        else:
            peers[-1][key] = value
    return InterfaceStatus(
        name=name,
        public_key=_public_of(device.get("private_key")),
        listen_port=int(device.get("listen_port", "0")),
        peers=tuple(_peer_status(p) for p in peers),
    )


def _public_of(private_hex: str | None) -> str | None:
    if not private_hex:
        return None
    from nacl.bindings import crypto_scalarmult_base

    return key_from_hex(crypto_scalarmult_base(bytes.fromhex(private_hex)).hex())


def _peer_status(p: dict) -> PeerStatus:
    seconds = int(p.get("last_handshake_time_sec", "0"))
    nanos = int(p.get("last_handshake_time_nsec", "0"))
    return PeerStatus(
        public_key=key_from_hex(p["public_key"]),
        endpoint=p.get("endpoint") or None,
        allowed_ips=tuple(p["allowed_ips"]),
        persistent_keepalive=int(p.get("persistent_keepalive_interval", "0")),
        latest_handshake=seconds + nanos / 1e9 if seconds else 0.0,
        rx_bytes=int(p.get("rx_bytes", "0")),
        tx_bytes=int(p.get("tx_bytes", "0")),
    )


class UapiClient:
    """Talks to one wireguard-go device through its socket."""

    def __init__(self, socket_path: Path, name: str) -> None:
        self.socket_path = socket_path
        self.name = name

    async def _exchange(self, request: list[str]) -> list[str]:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
        # that arrives as the inner call completes, and the caller's task then never stops.
        try:
            async with asyncio.timeout(TIMEOUT_S):
                return await self._exchange_unbounded(request)
        except TimeoutError:
            raise WireGuardError(f"{self.socket_path}: no answer in {TIMEOUT_S:g} s") from None

    async def _exchange_unbounded(self, request: list[str]) -> list[str]:
        try:
            reader, writer = await asyncio.open_unix_connection(str(self.socket_path))
        except OSError as exc:
            raise WireGuardError(
                f"cannot reach the WireGuard UAPI socket {self.socket_path}: {exc}") from None
        try:
            writer.write(("\n".join(request) + "\n\n").encode())
            await writer.drain()
            lines: list[str] = []
            while True:
                raw = await reader.readline()
                if not raw:
                    raise WireGuardError(f"{self.socket_path}: connection closed mid-answer")
                line = raw.decode().rstrip("\n")
                if line == "":
                    return lines
                lines.append(line)
        finally:
            writer.close()

    @staticmethod
    def _errno(operation: str, lines: list[str]) -> list[str]:
        if not lines or not lines[-1].startswith("errno="):
            raise WireGuardError(f"wireguard {operation}: answer without errno")
        errno = int(lines[-1].partition("=")[2])
        if errno != 0:
            raise UapiError(operation, errno)
        return lines[:-1]

    async def get(self) -> InterfaceStatus:
        lines = self._errno("get", await self._exchange(["get=1"]))
        return parse_get(self.name, lines)

    async def set(self, lines: list[str]) -> None:
        self._errno("set", await self._exchange(["set=1", *lines]))
