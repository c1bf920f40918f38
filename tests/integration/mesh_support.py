"""Helpers for the mesh tests: TCP over a namespace, an underlay capture."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
from pathlib import Path

import pytest
from waiting import wait_for

from bench.support.testbed import Testbed
from formation.identity import NodeIdentity
from formation.node.net.host import NetHost
from formation.node.net.peers import InterfaceStatus

requires_mesh_tools = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("wireguard-go", "ip", "nsenter")),
    reason="needs root, wireguard-go, iproute2 and nsenter",
)


def handshaken(status: InterfaceStatus, keys: list[str]) -> bool:
    peers = {p.public_key: p for p in status.peers}
    return all(k in peers and peers[k].latest_handshake > 0 for k in keys)


async def echo_server(host: NetHost, ip: str, port: int) -> asyncio.Server:
    """A TCP server in the host's namespace that answers every line with the same line."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
        writer.close()

    sock = await host.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((ip, port))
    sock.listen(8)
    return await asyncio.start_server(serve, sock=sock)


async def tcp_roundtrip(host: NetHost, ip: str, port: int, line: bytes,
                        timeout_s: float = 10.0) -> bytes:
    sock = await host.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (ip, port)),
                               timeout_s)
    except BaseException:
        sock.close()
        raise
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        writer.write(line + b"\n")
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), timeout_s)).rstrip(b"\n")
    finally:
        writer.close()


class UnderlayCapture:
    """tcpdump on every port of the underlay switch, writing raw packets to a file. (On br0
    itself tcpdump sees only frames to and from the bridge, not those it forwards.)

    A capture that lost packets proves nothing about what is absent from it. With `-s 0`
    (262144-byte frames) and immediate mode, tcpdump's default 2 MiB ring on `any` held only
    about 8 packets: whenever tcpdump was not scheduled for a moment (a loaded machine), a TCP
    exchange overflowed it and the kernel dropped the rest. Frames sized for the underlay's
    1500-byte MTU in a 16 MiB ring hold thousands; `dropped` reports tcpdump's own count, and
    `wait_for_bytes` waits until tcpdump has written what was sent, instead of stopping it after
    a fixed pause (packets still unread in the ring are lost when it stops)."""

    SNAPLEN = 2048  # the underlay's MTU and the link headers of `any`
    RING_KIB = 16384

    def __init__(self, bed: Testbed, path: Path) -> None:
        self.bed = bed
        self.path = path
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> UnderlayCapture:
        self.proc = await asyncio.create_subprocess_exec(
            # -Z root: tcpdump would drop to its own user, which cannot write pytest's tmp dir;
            # --immediate-mode: packets still in the ring buffer are lost on SIGTERM otherwise
            "ip", "netns", "exec", self.bed.switch, "tcpdump", "-Z", "root", "--immediate-mode",
            "-i", "any", "-U", "-n", "-s", str(self.SNAPLEN), "-B", str(self.RING_KIB),
            "-w", str(self.path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        assert self.proc.stderr is not None
        seen = b""
        while b"listening on" not in seen:
            line = await asyncio.wait_for(self.proc.stderr.readline(), 10)
            assert line, f"tcpdump did not start: {seen!r}"
            seen += line
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        assert self.proc.stderr is not None
        self.stats = (await asyncio.wait_for(self.proc.stderr.read(), 10)).decode()
        await asyncio.wait_for(self.proc.wait(), 10)

    def data(self) -> bytes:
        return self.path.read_bytes()

    async def wait_for_bytes(self, needle: bytes, timeout_s: float = 10.0) -> None:
        """Until tcpdump has written a packet holding `needle` (and so every one before it)."""
        async def written() -> bool:
            return needle in self.data()

        await wait_for(written, timeout_s, f"the capture to hold {needle!r}")

    @property
    def dropped(self) -> int:
        """Packets the kernel dropped because tcpdump's ring was full (after exit)."""
        match = re.search(r"(\d+) packets? dropped by kernel", self.stats)
        assert match, f"tcpdump reported no drop count: {self.stats!r}"
        return int(match.group(1))


def identities(names: list[str]) -> dict[str, NodeIdentity]:
    return {name: NodeIdentity.generate() for name in names}
