"""An edge in front of two backends, each in a network namespace this test creates (named
`fe<hex>-edge`, `fe<hex>-b1`, `fe<hex>-b2`, on a switch namespace, removed afterwards): the real
Caddy engine runs in the edge namespace, the backends are Python HTTP servers answering their
name, and the client sends its requests from inside the edge namespace to the edge's loopback.
No traffic leaves the namespaces the test made."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import secrets
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.support.testbed import Testbed
from formation.node.edge.engine import CaddyEngine
from formation.node.edge.routes import Backend, Route
from formation.node.edge.settings import EdgeSettings
from formation.node.net.host import NetHost, call_in_netns

HTTP_PORT = 8080
BACKEND_PORT = 8000
HOST = "www.example.test"
HEALTH_INTERVAL_S = 0.5
NAME_SERVER = Path(__file__).with_name("name_server.py")


@dataclass
class EdgeLab:
    bed: Testbed
    engine: CaddyEngine
    work: Path
    backends: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)

    @property
    def edge_netns(self) -> str:
        return self.bed.hosts["edge"].netns

    def backend(self, name: str) -> Backend:
        return Backend(self.bed.hosts[name].underlay_ip, BACKEND_PORT)

    def route(self, *names: str, host: str = HOST, route: str = "www") -> Route:
        return Route(host, "http", None, tuple(self.backend(n) for n in names), route)

    async def start_backend(self, name: str) -> None:
        """A Python HTTP server in `name`'s namespace answering its name (name_server.py)."""
        host = self.bed.hosts[name]
        self.backends[name] = await asyncio.create_subprocess_exec(
            *host.net.command([sys.executable, str(NAME_SERVER), host.underlay_ip,
                               str(BACKEND_PORT), name]),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)

    async def kill_backend(self, name: str) -> None:
        process = self.backends.pop(name)
        process.kill()
        await process.wait()

    async def get(self, host: str = HOST, port: int = HTTP_PORT,
                  path: str = "/") -> tuple[int, str] | None:
        """One request from inside the edge namespace: (status, body), None if it failed."""
        def send() -> tuple[int, str] | None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                connection.request("GET", path, headers={"Host": host})
                response = connection.getresponse()
                return response.status, response.read().decode(errors="replace")
            except OSError:
                return None
            finally:
                connection.close()

        return await asyncio.to_thread(call_in_netns, self.edge_netns, send)


@contextlib.asynccontextmanager
async def edge_lab(**settings: object) -> AsyncIterator[EdgeLab]:
    work = Path(tempfile.mkdtemp(prefix="fe-", dir="/tmp"))
    async with Testbed(["edge", "b1", "b2"], prefix=f"fe{secrets.token_hex(2)}-") as bed:
        edge = bed.hosts["edge"]
        config = EdgeSettings.model_validate({
            "listen": ["127.0.0.1"], "http_port": HTTP_PORT, "https_port": 8443,
            "health_interval_s": HEALTH_INTERVAL_S, "health_timeout_s": HEALTH_INTERVAL_S,
            **settings})
        engine = CaddyEngine(config, work / "edge", NetHost(
            netns=edge.netns, exec_prefix=("ip", "netns", "exec", edge.netns)))
        lab = EdgeLab(bed, engine, work)
        try:
            yield lab
        finally:
            await engine.stop()
            for name in list(lab.backends):
                await lab.kill_backend(name)
            shutil.rmtree(work, ignore_errors=True)
