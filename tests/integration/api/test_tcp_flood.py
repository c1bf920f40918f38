"""Anonymous clients on the TCP port, over real sockets: connections over the per-address or
total cap are closed at once (no log line each), the unix socket keeps answering while the TCP
port is flooded, and slow headers, slow bodies and idle keep-alives are cut off."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from settings_factory import make_settings

from formation.api import routes
from formation.api.client import NodeClient
from formation.node.service import NodeService
from tests.ports import free_port
from tests.waiting import until

HEALTH = f"GET {routes.health.path} HTTP/1.1\r\nHost: node\r\n\r\n".encode()


async def node_with(short_tmp: Path, **api) -> NodeService:
    service = NodeService(make_settings(short_tmp, api=api, discovery={"mdns": False}))
    await service.start()
    return service


def tcp_of(service: NodeService) -> tuple[str, int]:
    host, _, port = service.listen_addresses()[1].removeprefix("tcp:").rpartition(":")
    return host, int(port)


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connect(where: tuple[str, int], source: str = "127.0.0.1") -> Conn:
    return await asyncio.open_connection(*where, local_addr=(source, 0))


async def closed_by_server(conn: Conn, within_s: float) -> bool:
    """True when the server closes the connection (EOF or reset) within the time."""
    reader, _ = conn
    try:
        async with asyncio.timeout(within_s):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


async def served(conn: Conn) -> bool:
    """True when a whole request on this connection gets a 200."""
    reader, writer = conn
    try:
        writer.write(HEALTH)
        async with asyncio.timeout(5):
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length"))
            await reader.readexactly(length)
    except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
        return False
    return head.startswith(b"HTTP/1.1 200")


def close_all(conns: list[Conn]) -> None:
    for _, writer in conns:
        writer.close()


@pytest.fixture
async def per_peer_node(short_tmp: Path) -> AsyncIterator[NodeService]:
    service = await node_with(short_tmp, max_connections_per_peer=4, max_connections=6)
    yield service
    await service.stop()


async def test_connections_over_the_caps_are_closed_at_once_without_a_line_each(
        per_peer_node: NodeService, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="formation")
    where = tcp_of(per_peer_node)
    gate = per_peer_node.tcp_guard.gate  # type: ignore[union-attr]
    first = [await connect(where) for _ in range(4)]
    over = [await connect(where) for _ in range(3)]
    assert all([await closed_by_server(c, 3) for c in over]), "over the per-address cap"
    assert all([await served(c) for c in first])
    # Another address has its own share, until the total cap.
    others = [await connect(where, "127.0.0.2") for _ in range(2)]
    assert all([await served(c) for c in others])
    beyond_total = await connect(where, "127.0.0.3")
    assert await closed_by_server(beyond_total, 3), "over the total cap"
    assert gate.refused.labels("per_peer")._value.get() == 3
    assert gate.refused.labels("total")._value.get() == 1
    # A slot freed is a slot again.
    close_all(first[:1])
    await until(lambda: asyncio.sleep(0, gate.open == 5), timeout_s=5)
    assert await served(await connect(where))
    per_connection = [r for r in caplog.records if r.levelno >= logging.INFO
                      and "refused" in r.getMessage()]
    assert per_connection == [], "no log line per refused connection"
    gate.report()  # the periodic summary, now
    summary = [r for r in caplog.records if "limits reached" in r.getMessage()]
    assert len(summary) == 1 and summary[0].fields["refused_per_peer"] == 3
    close_all(first + over + others + [beyond_total])


@pytest.fixture
async def slow_node(short_tmp: Path) -> AsyncIterator[NodeService]:
    service = await node_with(short_tmp, header_timeout_s=0.5, body_timeout_s=0.5,
                              idle_timeout_s=0.8)
    yield service
    await service.stop()


async def test_trickled_headers_are_cut_off(slow_node: NodeService) -> None:
    conn = await connect(tcp_of(slow_node))
    _, writer = conn
    writer.write(b"GET /v1/health HTTP/1.1\r\nHost: node\r\n")

    async def trickle() -> None:
        with contextlib.suppress(ConnectionError):
            for n in range(100):
                writer.write(f"X-Slow-{n}: 1\r\n".encode())
                await asyncio.sleep(0.05)

    trickling = asyncio.ensure_future(trickle())
    assert await closed_by_server(conn, 4), "a slowloris client keeps its connection"
    trickling.cancel()
    gate = slow_node.tcp_guard.gate  # type: ignore[union-attr]
    assert gate.timed_out.labels("headers")._value.get() == 1
    writer.close()


async def test_a_connection_that_never_sends_is_cut_off(slow_node: NodeService) -> None:
    assert await closed_by_server(await connect(tcp_of(slow_node)), 4)


async def test_a_trickled_body_is_cut_off(slow_node: NodeService) -> None:
    conn = await connect(tcp_of(slow_node))
    _, writer = conn
    writer.write(b"POST /v1/capabilities/probe HTTP/1.1\r\nHost: node\r\n"
                 b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
    assert await closed_by_server(conn, 4), "a slow body keeps its connection"
    gate = slow_node.tcp_guard.gate  # type: ignore[union-attr]
    assert gate.timed_out.labels("body")._value.get() == 1
    writer.close()


async def test_idle_keep_alive_is_closed_and_busy_keep_alive_is_not(
        slow_node: NodeService) -> None:
    conn = await connect(tcp_of(slow_node))
    for _ in range(4):  # requests 0.3 s apart: longer in all than any timeout, each in time
        assert await served(conn)
        await asyncio.sleep(0.3)
    assert await closed_by_server(conn, 4), "an idle kept-alive connection stays open"
    conn[1].close()


# The unix socket under a flood: a node process with a low open-file limit ---------------------

NOFILE = 256


def _low_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


@pytest.fixture
def node_process(short_tmp: Path):
    port = free_port()
    config = short_tmp / "node.yaml"
    config.write_text(yaml.safe_dump({
        "name": "flooded", "data_dir": str(short_tmp / "data"),
        "api": {"socket": str(short_tmp / "node.sock"), "listen": f"127.0.0.1:{port}"},
        "discovery": {"mdns": False}, "probe": {"boot_test": False}, "log": {"level": "info"},
    }))
    log_file = short_tmp / "node.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORMATION_")}
    with log_file.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "formation", "--config", str(config), "node"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, preexec_fn=_low_nofile)
    yield proc, short_tmp / "node.sock", ("127.0.0.1", port), log_file
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def test_the_unix_socket_answers_while_idle_tcp_connections_flood_the_port(
        node_process) -> None:
    proc, sock, where, log_file = node_process

    async def status() -> bool:
        async with NodeClient.unix(sock, timeout_s=3) as client:
            with contextlib.suppress(Exception):
                return (await client.call(routes.node_status)).identity.node_id != ""
        return False

    await until(status, timeout_s=60)

    async def one(n: int) -> Conn | None:
        with contextlib.suppress(OSError, TimeoutError):  # a full backlog: the SYN waits
            async with asyncio.timeout(2):
                return await connect(where, f"127.0.0.{2 + n % 8}")
        return None

    # from eight addresses: the per-address cap alone is no help
    held = [c for c in await asyncio.gather(*(one(n) for n in range(2 * NOFILE))) if c]
    await asyncio.sleep(0.5)  # let the node accept (or refuse) what is queued
    log_before = log_file.stat().st_size
    for _ in range(5):
        assert await status(), "the unix socket stopped answering under the TCP flood"
    assert proc.poll() is None
    async with NodeClient.unix(sock, timeout_s=3) as client:
        metrics = (await client.raw_get(routes.METRICS_PATH)).decode()
    refused = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                  if line.startswith("formation_api_connections_refused_total{"))
    held_open = next(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                     if line.startswith("formation_api_connections_open "))
    assert refused > 0, metrics
    assert 0 < held_open <= NOFILE * 3 // 4, "at most the cap: a quarter is kept for the node"
    assert log_file.stat().st_size - log_before < 10_000, "the log grows under the flood"
    close_all(held)
