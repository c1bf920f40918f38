"""tcp routes on the real engine (Debian's HAProxy 2.6, beside Caddy): two TCP echo backends in
namespaces the test creates (`ft<hex>-b1`, `ft<hex>-b2`, tcp_echo_server.py: they answer their
name, then echo), HAProxy in the edge namespace, the client connecting from inside the edge
namespace to its loopback. Connections are balanced; a killed backend is out within the health
interval and no connection fails after that; it is back once restarted; a route change is a
reload that drops no established connection and refuses no new one; two tcp routes on one
public port are refused with one line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from waiting import until

from bench.support.testbed import Testbed
from formation.node.edge.haproxy_engine import HaproxyEngine, HaproxyError
from formation.node.edge.routes import Backend, Route
from formation.node.edge.settings import EdgeSettings
from formation.node.net.host import NetHost, call_in_netns

pytestmark = [pytest.mark.root, pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("ip", "nsenter", "haproxy")),
    reason="needs root, iproute2, nsenter and haproxy (scripts/system-packages.sh)")]

PUBLIC_PORT = 5432
OTHER_PORT = 2222
BACKEND_PORT = 7000
HEALTH_INTERVAL_S = 0.5
ECHO_SERVER = Path(__file__).with_name("tcp_echo_server.py")


@dataclass
class TcpLab:
    bed: Testbed
    engine: HaproxyEngine
    backends: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    @property
    def edge_netns(self) -> str:
        return self.bed.hosts["edge"].netns

    def backend(self, name: str) -> Backend:
        return Backend(self.bed.hosts[name].underlay_ip, BACKEND_PORT)

    def route(self, *names: str, port: int = PUBLIC_PORT, name: str = "db") -> Route:
        return Route(f"{name}.example.test", "tcp", port,
                     tuple(self.backend(n) for n in names), name)

    async def start_backend(self, name: str) -> None:
        host = self.bed.hosts[name]
        self.backends[name] = await asyncio.create_subprocess_exec(
            *host.net.command([sys.executable, str(ECHO_SERVER), host.underlay_ip,
                               str(BACKEND_PORT), name]),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)

    async def kill_backend(self, name: str) -> None:
        process = self.backends.pop(name)
        process.kill()
        await process.wait()

    async def connect(self, port: int = PUBLIC_PORT) -> socket.socket | None:
        """A connection through the edge from inside its namespace, once the backend's name
        arrived (None: refused, reset or closed before it)."""
        def dial() -> socket.socket | None:
            sock = socket.socket()
            sock.settimeout(10)
            try:
                sock.connect(("127.0.0.1", port))
                return sock
            except OSError:
                sock.close()
                return None

        return await asyncio.to_thread(call_in_netns, self.edge_netns, dial)

    async def name_of(self, port: int = PUBLIC_PORT) -> str | None:
        """Which backend answers a new connection (None: the connection failed)."""
        sock = await self.connect(port)
        if sock is None:
            return None
        try:
            return await asyncio.to_thread(_line, sock)
        finally:
            sock.close()


def _line(sock: socket.socket) -> str | None:
    data = b""
    try:
        while not data.endswith(b"\n"):
            chunk = sock.recv(256)
            if not chunk:
                return None
            data += chunk
    except OSError:
        return None
    return data.decode().strip()


def _echo(sock: socket.socket, text: str) -> str | None:
    try:
        sock.sendall(text.encode() + b"\n")
    except OSError:
        return None
    return _line(sock)


@contextlib.asynccontextmanager
async def tcp_lab() -> AsyncIterator[TcpLab]:
    work = Path(tempfile.mkdtemp(prefix="ft-", dir="/tmp"))
    async with Testbed(["edge", "b1", "b2"], prefix=f"ft{secrets.token_hex(2)}-") as bed:
        edge = bed.hosts["edge"]
        settings = EdgeSettings.model_validate({
            "listen": ["127.0.0.1"], "health_interval_s": HEALTH_INTERVAL_S,
            "health_timeout_s": HEALTH_INTERVAL_S})
        engine = HaproxyEngine(settings, work / "edge", NetHost(
            netns=edge.netns, exec_prefix=("ip", "netns", "exec", edge.netns)))
        lab = TcpLab(bed, engine)
        try:
            await lab.start_backend("b1")
            await lab.start_backend("b2")
            yield lab
        finally:
            await engine.stop()
            for name in list(lab.backends):
                await lab.kill_backend(name)
            shutil.rmtree(work, ignore_errors=True)


async def serving(lab: TcpLab, *names: str, port: int = PUBLIC_PORT) -> None:
    seen: set[str | None] = set()

    async def all_seen() -> bool:
        seen.add(await lab.name_of(port))
        return seen >= set(names)

    await until(all_seen, timeout_s=15, what=f"the edge's port {port} reaching {names}",
                context=lambda: f"seen: {seen}")


Reply = tuple[float, str | None]


@contextlib.asynccontextmanager
async def steady_client(lab: TcpLab) -> AsyncIterator[list[Reply]]:
    """New connections back to back until the block ends: (when, which backend or None)."""
    replies: list[Reply] = []
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            replies.append((time.monotonic(), await lab.name_of()))

    task = asyncio.create_task(loop())
    try:
        yield replies
    finally:
        stop.set()
        await task


async def test_tcp_route_balances_connections_over_both_backends() -> None:
    async with tcp_lab() as lab:
        await lab.engine.start([lab.route("b1", "b2")])
        await serving(lab, "b1", "b2")
        names = [await lab.name_of() for _ in range(10)]
        assert None not in names
        assert abs(names.count("b1") - names.count("b2")) <= 1, names  # round robin
        assert await lab.engine.upstreams_healthy() == {
            lab.backend("b1").dial: True, lab.backend("b2").dial: True}
        await lab.engine.upstreams_healthy()  # feeds the route's counters
        assert lab.engine.counters.value(lab.engine.counters.connections, "db") >= 10


async def test_killed_backend_is_out_within_the_health_interval_and_back_when_restarted(
) -> None:
    async with tcp_lab() as lab:
        await lab.engine.start([lab.route("b1", "b2")])
        await serving(lab, "b1", "b2")
        async with steady_client(lab) as replies:
            await until(lambda: len(replies) > 10, what="connections before the kill")
            killed_at = time.monotonic()
            await lab.kill_backend("b1")
            dead_at = time.monotonic()  # b1's process has exited: its port refuses from here
            b1 = lab.backend("b1").dial

            async def out() -> bool:
                return (await lab.engine.upstreams_healthy()).get(b1) is False

            await until(out, timeout_s=15, what="b1 marked down by HAProxy's checks")
            out_s = time.monotonic() - killed_at
            settled = killed_at + HEALTH_INTERVAL_S * 2
            await until(lambda: replies[-1][0] > settled + 2.0, timeout_s=15,
                        what="two seconds of connections after the health interval")
        assert out_s <= HEALTH_INTERVAL_S * 2 + 1.0, out_s
        # a refused connect is retried on the other backend: not one connection started once
        # b1 was gone failed, even before the checks marked it down (one that b1 accepted while
        # it was being killed can fail: HAProxy cannot retry an established session)
        after_kill = [name for at, name in replies if at > dead_at]
        assert after_kill and None not in after_kill, after_kill
        after = [name for at, name in replies if at > settled]
        assert after and set(after) == {"b2"}, after
        await lab.start_backend("b1")
        await serving(lab, "b1")  # back without anyone telling the edge


async def test_route_change_is_a_reload_that_drops_no_established_connection() -> None:
    async with tcp_lab() as lab:
        await lab.engine.start([lab.route("b1")])
        await serving(lab, "b1")
        pid = lab.engine.process.pid if lab.engine.process else None
        held = await lab.connect()
        assert held is not None and await asyncio.to_thread(_line, held) == "b1"
        try:
            async with steady_client(lab) as replies:
                # a backend added, then a second route on another port: one reload each
                assert await lab.engine.apply([lab.route("b1", "b2")]) == ["reload"]
                await serving(lab, "b2")
                other = lab.route("b2", port=OTHER_PORT, name="ssh")
                assert await lab.engine.apply([lab.route("b2"), other]) == ["reload"]
                assert await lab.name_of(OTHER_PORT) == "b2"
                assert await lab.engine.apply([lab.route("b2"), other]) == []  # no change
                await until(lambda: len(replies) >= 4, what="the steady client's 4th answer")
            assert all(name in ("b1", "b2") for _, name in replies), replies
            # the connection made before the changes still reaches b1, through the old worker
            assert await asyncio.to_thread(_echo, held, "still there") == "still there"
        finally:
            held.close()
        assert lab.engine.process is not None and lab.engine.process.pid == pid  # no restart
        assert lab.engine.reloads == 2


async def test_two_tcp_routes_on_one_port_and_bad_routes_are_refused_with_one_line() -> None:
    async with tcp_lab() as lab:
        await lab.engine.start([lab.route("b1")])
        await serving(lab, "b1")
        before = lab.engine.applied
        clash = lab.route("b2", name="other")  # same public port
        with pytest.raises(HaproxyError) as refused:
            await lab.engine.apply([lab.route("b1"), clash])
        assert "port: 5432 already taken by another tcp route" in str(refused.value)
        assert "\n" not in str(refused.value)
        with pytest.raises(HaproxyError, match=r"backends\[0\]\.port: expected a TCP port"):
            await lab.engine.apply([Route("db.example.test", "tcp", PUBLIC_PORT,
                                          (Backend("198.18.0.2", 0),), "db")])
        assert lab.engine.applied == before and lab.engine.reloads == 0
        assert await lab.name_of() == "b1"


async def test_a_reload_that_cannot_bind_leaves_the_served_routes_as_they_were() -> None:
    """Another program holds the new route's port: HAProxy's new worker cannot start, the old
    one serves on, the change is refused in one line, and a restart takes the old routes."""
    async with tcp_lab() as lab:
        await lab.engine.start([lab.route("b1")])
        await serving(lab, "b1")

        def hold() -> socket.socket:
            sock = socket.socket()
            sock.bind(("127.0.0.1", OTHER_PORT))
            sock.listen()
            return sock

        holder = await asyncio.to_thread(call_in_netns, lab.edge_netns, hold)
        try:
            with pytest.raises(HaproxyError) as refused:
                await lab.engine.apply([lab.route("b1"),
                                        lab.route("b2", port=OTHER_PORT, name="ssh")])
            assert "reload failed" in str(refused.value) and "\n" not in str(refused.value)
        finally:
            holder.close()
        assert await lab.name_of() == "b1"
        assert [r.name for r in lab.engine.routes] == ["db"]
        assert lab.engine.process is not None
        lab.engine.process.kill()
        await until(lambda: lab.engine.starts == 2 and lab.engine.applied, timeout_s=15,
                    what="haproxy started again")
        assert await lab.name_of() == "b1" and await lab.name_of(OTHER_PORT) is None


async def test_crashed_haproxy_is_restarted_with_the_newest_routes() -> None:
    async with tcp_lab() as lab:
        await lab.engine.start([lab.route("b1")])
        await lab.engine.apply([lab.route("b2")])
        await serving(lab, "b2")
        assert lab.engine.process is not None
        lab.engine.process.kill()  # the master: its worker follows it
        await until(lambda: lab.engine.starts == 2 and lab.engine.applied,
                    timeout_s=15, what="haproxy started again")
        await serving(lab, "b2")
        assert {await lab.name_of() for _ in range(4)} == {"b2"}
