"""route_apply_ms as issue 19 defines it: a `route.set` op written to a node's store -> the new
route served by that node's edge. The whole chain of a real node service runs: the op is
checked by the rules and folded into the routes view, the edge part's feed (state/route_feed.py)
sees the change, turns it into Caddy's config and applies it through the admin API, and Caddy
answers the new host. The edge runs in a namespace of its own and the backend, a Python HTTP
server standing in for an instance, in another (the edge refuses loopback backends: a hostile
node could report one), both made here and removed afterwards (bench/support/testbed.py)."""

from __future__ import annotations

import asyncio
import http.client
import secrets
import sys
import time
from pathlib import Path

from support.testbed import Testbed

from formation.config.settings import NodeSettings
from formation.node.edge.component import EdgeComponent
from formation.node.edge.settings import EdgeSettings
from formation.node.net.host import NetHost, call_in_netns
from formation.node.service import NodeService
from formation.node.state.component import StateComponent

BACKEND_PORT, HTTP_PORT = 8000, 8080
SERVER = "import http.server as h, sys; h.HTTPServer((sys.argv[1], 8000), " \
         "h.SimpleHTTPRequestHandler).serve_forever()"


def _answers(host: str) -> bool:
    """One request from inside the edge's namespace (call_in_netns): a 200 for `host`?"""
    connection = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=2)
    try:
        connection.request("GET", "/", headers={"Host": host})
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except OSError:
        return False
    finally:
        connection.close()


async def _served(netns: str, host: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(call_in_netns, netns, lambda: _answers(host)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{host}: not served {timeout_s:g} s after its route.set")
        await asyncio.sleep(0.005)


async def route_op_apply_ms(work: Path, count: int) -> list[float]:
    """Milliseconds from each of `count` route.set appends to its host's first 200."""
    async with Testbed(["edge", "b"], prefix=f"rp{secrets.token_hex(2)}-") as bed:
        edge_ns, backend = bed.hosts["edge"].netns, bed.hosts["b"]
        server = await asyncio.create_subprocess_exec(
            *backend.net.command([sys.executable, "-c", SERVER, backend.underlay_ip]),
            cwd=work, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        edge = EdgeComponent(
            NetHost(netns=edge_ns, exec_prefix=("ip", "netns", "exec", edge_ns)),
            state=(state := StateComponent()),
            settings=EdgeSettings(enabled=True, listen=["127.0.0.1"], http_port=HTTP_PORT,
                                  https_port=8443, run_dir=work / "op-edge"))
        service = NodeService(NodeSettings.model_validate({
            "name": "bench-edge", "data_dir": str(work / "op-node"),
            "api": {"socket": str(work / "op-node.sock")}, "probe": {"boot_test": False}}),
            components=[state, edge])
        await service.start()
        try:
            return await _measure(state, edge_ns, backend.underlay_ip, count)
        finally:
            await service.stop()
            server.kill()
            await server.wait()


async def _measure(state: StateComponent, edge_ns: str, address: str, count: int
                   ) -> list[float]:
    store = state.require_store()
    await store.create_network("bench", "10.42.0.0/16")
    spec = {"image": "ab" * 32, "vcpus": 1, "memory_mb": 512, "disk_gb": 5,
            "ports": [f"{BACKEND_PORT}/tcp"]}
    instance = (await store.append("instance.create", {"name": "web", "spec": spec})).id
    placed = await store.append("instance.place", {"instance": instance.hex(),
                                                   "node": store.identity.public_key_hex})
    await store.append("instance.status", {
        "instance": instance.hex(), "placement": placed.id.hex(),
        "observed": {"state": "running", "address": address}})
    applies = []
    for index in range(count):
        host = f"op{index}.bench.test"
        start = time.monotonic()
        await store.append("route.set", {"host": host, "protocol": "http",
                                         "port": BACKEND_PORT, "instances": [instance.hex()]})
        await _served(edge_ns, host)
        applies.append((time.monotonic() - start) * 1000)
    return applies
