"""The edge part fed by the state part, in one node service: Caddy (Debian's) runs in a
namespace the test creates (`fr<hex>-edge`) and two Python HTTP servers in `b1` and `b2` stand
in for instances (edge_lab.py). Route ops written to the node's store are served without a call
to the edge; a tcp route is served by HAProxy beside Caddy (started for it), and a second tcp
route asking for the same public port is marked by the routes view and left out; the node's
health names the routes served."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest
from edge_lab import BACKEND_PORT, HEALTH_INTERVAL_S, HOST, HTTP_PORT, EdgeLab
from settings_factory import make_settings
from waiting import until

from bench.support.testbed import Testbed
from formation.api import routes as api
from formation.api.client import NodeClient
from formation.node.edge.component import EdgeComponent
from formation.node.edge.settings import EdgeSettings
from formation.node.net.host import NetHost
from formation.node.service import NodeService
from formation.node.state.component import StateComponent

pytestmark = [pytest.mark.root, pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in ("ip", "nsenter", "caddy", "haproxy")),
    reason="needs root, iproute2, nsenter, caddy and haproxy (scripts/system-packages.sh)")]

SPEC = {"image": "ab" * 32, "vcpus": 1, "memory_mb": 512, "disk_gb": 5,
        "ports": [f"{BACKEND_PORT}/tcp", "22/tcp"]}


async def test_the_edge_part_serves_the_routes_view() -> None:
    work = Path(tempfile.mkdtemp(prefix="fr-", dir="/tmp"))
    async with Testbed(["edge", "b1", "b2"], prefix=f"fr{secrets.token_hex(2)}-") as bed:
        netns = bed.hosts["edge"].netns
        settings = EdgeSettings.model_validate({
            "enabled": True, "listen": ["127.0.0.1"], "http_port": HTTP_PORT,
            "https_port": 8443, "health_interval_s": HEALTH_INTERVAL_S,
            "health_timeout_s": HEALTH_INTERVAL_S, "run_dir": str(work / "edge")})
        state = StateComponent()
        edge = EdgeComponent(NetHost(netns=netns, exec_prefix=("ip", "netns", "exec", netns)),
                             settings=settings, state=state)
        service = NodeService(make_settings(work), components=[state, edge])
        lab: EdgeLab | None = None
        try:
            await service.start()
            assert edge.engine is not None
            lab = EdgeLab(bed, edge.engine, work)  # the part runs the engine, the lab the rest
            await lab.start_backend("b1")
            await lab.start_backend("b2")
            store = state.require_store()
            await store.create_network("lab", "10.42.0.0/16")
            me = store.identity.public_key_hex
            ids = []
            for name, backend in (("web1", "b1"), ("web2", "b2")):
                inst = (await store.append("instance.create", {"name": name, "spec": SPEC})).id
                place = await store.append("instance.place", {"instance": inst.hex(),
                                                              "node": me})
                await store.append("instance.status", {
                    "instance": inst.hex(), "placement": place.id.hex(),
                    "observed": {"state": "running", "address": lab.backend(backend).address}})
                ids.append(inst.hex())
            await store.append("route.set", {"host": HOST, "protocol": "http",
                                             "port": BACKEND_PORT, "instances": ids})
            ssh = await store.append("route.set", {
                "host": "ssh.example.test", "protocol": "tcp", "port": 22, "listen": 2222,
                "instances": ids})
            # a hostile or concurrent writer's route for a taken port: the view marks it
            await store.append("route.set", {"host": "ssh2.example.test", "protocol": "tcp",
                                             "port": 22, "listen": 2222, "instances": ids})
            seen: set[str] = set()

            async def both() -> bool:
                reply = await lab.get()
                if reply and reply[0] == 200:
                    seen.add(reply[1])
                return seen == {"b1", "b2"}

            await until(both, timeout_s=15, what="both instances served through the edge part")
            await until(lambda: edge.tcp_engine is not None and edge.tcp_engine.applied,
                        what="haproxy started for the tcp route")
            assert sorted(r.host for r in edge.state_routes) == sorted([HOST, "ssh.example.test"])
            assert edge.tcp_engine is not None
            assert [r.name for r in edge.tcp_engine.routes] == ["ssh_example_test_tcp2222"]
            view = {r["key"]: r for r in await store.view("routes")}
            assert "port 2222 is taken" in view["ssh2.example.test"]["conflict"]
            assert "conflict" not in view["ssh.example.test"]
            async with NodeClient.unix(service.settings.api.socket) as client:
                health = await client.call(api.health)
            check = next(c for c in health.checks if c.name == "edge")
            assert check.ok and "caddy serving 1 route(s)" in check.detail
            assert "haproxy serving 1 tcp route(s)" in check.detail
            # the tcp route's counters reach /metrics with the health refresh
            await until(lambda: service.metrics.registry.get_sample_value(
                "formation_edge_route_connections_total",
                {"route": "ssh_example_test_tcp2222"}) is not None, timeout_s=15,
                what="the tcp route's connection counter on /metrics")
            # the last tcp route goes: so does HAProxy (the other one never had the port)
            await store.append("route.remove", {"route": ssh.id.hex()})
            await until(lambda: edge.tcp_engine is not None
                        and [r.host for r in edge.tcp_engine.routes] == ["ssh2.example.test"],
                        timeout_s=15, what="the route that waited for the port served")
            ssh2 = next(r for r in await store.view("routes") if r["key"] == "ssh2.example.test")
            await store.append("route.remove", {"route": ssh2["id"]})
            await until(lambda: edge.tcp_engine is None, timeout_s=15,
                        what="haproxy stopped with no tcp route left")
            reply = await lab.get()
            assert reply is not None and reply[0] == 200  # Caddy's route untouched
        finally:
            await service.stop()
            for name in list(lab.backends if lab else []):
                await lab.kill_backend(name)
            shutil.rmtree(work, ignore_errors=True)
