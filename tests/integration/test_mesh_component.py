"""The mesh and DNS as parts of a real node service, in a simulated host: started after the API
answers (as `formation node` starts them), the interface made with the node's own WireGuard
key, GET /v1/mesh, `formation mesh status`, status events."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from mesh_support import identities, requires_mesh_tools
from settings_factory import make_settings
from waiting import wait_for

from bench.support.testbed import Testbed
from formation.api.client import ApiError, NodeClient
from formation.api.mesh_routes import mesh_status
from formation.api.routes import health
from formation.node.dns.component import DnsComponent
from formation.node.net.component import MeshComponent
from formation.node.net.peers import WireGuardError
from formation.node.net.reconcile import DesiredPeer
from formation.node.net.wggo import WireGuardGoBackend
from formation.node.net.wgkernel import KernelWireGuardBackend
from formation.node.service import NodeService

pytestmark = [requires_mesh_tools, pytest.mark.root]


async def test_node_runs_the_mesh_and_reports_it(short_tmp: Path) -> None:
    peer_id = identities(["b"])["b"]
    async with Testbed(["a", "b"]) as bed:
        settings = make_settings(short_tmp, mesh={
            "enabled": True, "address": "10.88.0.1/16", "status_interval_s": 0.2,
        }, dns={"enabled": True})
        mesh = MeshComponent(bed.hosts["a"].net)
        dns = DnsComponent(bed.hosts["a"].net)
        service = NodeService(settings, components=[mesh, dns])
        other = WireGuardGoBackend("formnet0", bed.hosts["b"].net)
        await service.start(defer=True)  # as `formation node` does: the mesh after READY
        try:
            async with NodeClient.unix(settings.api.socket) as client:
                with pytest.raises(ApiError, match="starting"):
                    await client.call(mesh_status)
                checks = {c.name: c for c in (await client.call(health)).checks}
                assert checks["mesh"].detail == "starting" and checks["dns"].detail == "starting"
            assert not bed.hosts["a"].net.path("/run/wireguard/formnet0.sock").exists()
            await service.start_deferred()
            assert service.identity is not None
            await other.create(peer_id.wireguard_private_key, 51820)
            await other.add_address("10.88.0.2/16")
            await other.set_peer(_peer_config(service.identity.wireguard_public_key,
                                              f"{bed.hosts['a'].underlay_ip}:51820"))
            assert mesh.reconciler is not None
            result = await mesh.reconciler.reconcile([DesiredPeer(
                "nodeb", peer_id.wireguard_public_key, (f"{bed.hosts['b'].underlay_ip}:51820",),
                ("10.88.0.2/32",))])
            assert [c.action for c in result.applied] == ["add"]

            async with NodeClient.unix(settings.api.socket) as client:
                async def handshake_seen() -> bool:
                    status = await client.call(mesh_status)
                    return bool(status.peers) and status.peers[0].handshake_age_s is not None
                await wait_for(handshake_seen, 15, "a handshake in GET /v1/mesh")
                status = await client.call(mesh_status)
                assert status.backend == "wireguard-go"  # chosen by the probe: no kernel module
                assert status.public_key == service.identity.wireguard_public_key
                assert status.address == "10.88.0.1/16" and status.listen_port == 51820
                (peer,) = status.peers
                assert peer.node_id == "nodeb"
                assert peer.endpoint == f"{bed.hosts['b'].underlay_ip}:51820"
                assert peer.rx_bytes > 0 and peer.tx_bytes > 0
                checks = {c.name: c for c in (await client.call(health)).checks}
                assert checks["mesh"].ok and checks["dns"].ok

                event = await asyncio.wait_for(_first_mesh_event(client), 10)
                assert event.kind == "status" and event.data["interface"] == "formnet0"

            # the command, as a person or a script runs it
            env = {**os.environ, "FORMATION_API__SOCKET": str(settings.api.socket)}
            cli = [sys.executable, "-m", "formation", "mesh", "status"]
            done = await _run([*cli, "--json"], env)
            assert json.loads(done)["peers"][0]["node_id"] == "nodeb"
            text = await _run(cli, env)
            assert "nodeb" in text and "formnet0 (wireguard-go)" in text

            # form-dns on the node's mesh address (the default), asked from b over the mesh
            dns.records.set("b", "net1", ["10.88.0.2"])
            answer = await bed.hosts["b"].run("dig", "@10.88.0.1", "+short", "+time=2",
                                              "+tries=1", "b.net1.fog")
            assert answer.split() == ["10.88.0.2"]
        finally:
            await other.delete()
            await service.stop()
        assert not bed.hosts["a"].net.path("/run/wireguard/formnet0.sock").exists()


async def test_kernel_backend_says_clearly_when_the_module_is_missing() -> None:
    """Only what this machine can show: it has no WireGuard module. The kernel backend's
    success path is not exercised here."""
    if Path("/sys/module/wireguard").exists():
        pytest.skip("this kernel has WireGuard: the missing-module path cannot be shown")
    async with Testbed(["a"]) as bed:
        backend = KernelWireGuardBackend("formnet0", bed.hosts["a"].net)
        with pytest.raises(WireGuardError, match="no WireGuard module"):
            await backend.create(identities(["a"])["a"].wireguard_private_key, 51820)


def _peer_config(key: str, endpoint: str):
    from formation.node.net.peers import PeerConfig

    return PeerConfig(key, endpoint, ("10.88.0.1/32",), 25)


async def _first_mesh_event(client: NodeClient):
    async for event in client.events(topic="mesh"):
        return event
    raise AssertionError("event stream ended")


async def _run(args: list[str], env: dict[str, str]) -> str:
    proc = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return out.decode()
