"""The mesh follows the replicated state, on the lab (root, real wireguard-go, each host with its
own network and mount namespace): h1 founds, h2 and h3 join with tokens; then every pair has a
handshake and TCP passes between mesh addresses; form-dns on h2 answers h1's name from the state
to `dig` on h3; removing h3 from the network removes its peer on h1 and h2."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
from lab_running import cli, running_lab
from waiting import until as _until

from formation.api import mesh_routes
from formation.lab import Lab
from tests.conftest import needs_root

pytestmark = [needs_root(), pytest.mark.root, pytest.mark.timeout(180)]

HOSTS = ["h1", "h2", "h3"]
DNS_PORT = 5300
OVERRIDES = {
    "mesh": {"enabled": True, "backend": "wireguard-go", "status_interval_s": 1.0},
    "dns": {"enabled": True, "port": DNS_PORT},  # on the mesh address claimed in the state
}

TCP_SERVER = """import socket, sys
s = socket.create_server((sys.argv[1], 7777)); s.settimeout(15)
print("listening", flush=True)
c, _ = s.accept(); c.settimeout(15); data = b""
while chunk := c.recv(100):
    data += chunk
print(data.decode())"""
TCP_CLIENT = """import socket, sys
c = socket.create_connection((sys.argv[1], 7777), timeout=5)
c.sendall(b"over-the-mesh"); c.close()"""


@pytest.fixture(scope="module")
def lab():
    with running_lab(3, pretrust=False, node_overrides=OVERRIDES) as instance:
        yield instance


async def mesh_peers(lab: Lab, host: str) -> dict[str, float | None]:
    """Peer WireGuard key -> handshake age (None: never)."""
    async with lab.client(host) as client:
        status = await client.call(mesh_routes.mesh_status)
    assert status.up, status.error
    return {p.public_key: p.handshake_age_s for p in status.peers}


@pytest.mark.network(fields=("wireguard_key", "address", "wg_endpoints"))
async def test_mesh_follows_the_state(lab: Lab, network):
    nodes = network
    for h in HOSTS:
        assert nodes[h]["wg_endpoints"] == [f"{lab.host(h).address}:51820"]
    keys = {h: nodes[h]["wireguard_key"] for h in HOSTS}
    address = {h: nodes[h]["address"] for h in HOSTS}
    assert len(set(address.values())) == 3

    async def every_pair_shook_hands() -> bool:
        for h in HOSTS:
            peers = await mesh_peers(lab, h)
            want = {keys[o] for o in HOSTS if o != h}
            if set(peers) != want or any(peers[k] is None for k in want):
                return False
        return True

    await _until(every_pair_shook_hands, 45, every_s=0.5)
    # `lab status` shows each host's mesh address and its handshakes, read from its node
    hosts = {h["name"]: h for h in (await asyncio.to_thread(lab.status))["hosts"]}
    for h in HOSTS:
        assert hosts[h]["mesh_up"] and hosts[h]["mesh_address"].startswith(address[h] + "/")
        assert hosts[h]["mesh_handshaken"] == hosts[h]["mesh_peers"] == 2

    # TCP over the mesh: h1 listens on its mesh address (only formnet0 has it), h2 connects.
    argv, env = lab.exec_argv("h1", [sys.executable, "-c", TCP_SERVER, address["h1"]])
    server = await asyncio.create_subprocess_exec(*argv, env=env,
                                                  stdout=asyncio.subprocess.PIPE)
    try:
        assert server.stdout is not None
        assert await asyncio.wait_for(server.stdout.readline(), 15) == b"listening\n"
        sent = await asyncio.to_thread(
            lab.exec, "h2", [sys.executable, "-c", TCP_CLIENT, address["h1"]],
            capture_output=True, text=True, timeout=15)
        assert sent.returncode == 0, sent.stderr
        received, _ = await asyncio.wait_for(server.communicate(), 10)
        assert received.decode().strip() == "over-the-mesh"
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
    for src, dst in (("h3", "h1"), ("h1", "h3"), ("h2", "h3")):
        ping = await asyncio.to_thread(
            lab.exec, src, ["busybox", "ping", "-c", "1", "-W", "3", address[dst]],
            capture_output=True, text=True, timeout=15)
        assert ping.returncode == 0, f"{src} -> {dst}: {ping.stdout}{ping.stderr}"

    # form-dns on h2, asked over the mesh from h3, answers h1's name from the state.
    dig = await asyncio.to_thread(
        lab.exec, "h3", ["dig", "+short", "+time=3", "+tries=2", "-p", str(DNS_PORT),
                         f"@{address['h2']}", "h1.lab.fog"],
        capture_output=True, text=True, timeout=20)
    assert dig.returncode == 0, dig.stderr
    assert dig.stdout.split() == [address["h1"]]

    # An admin removes h3: its peer goes away on h1 and h2, the others stay.
    out = await cli(lab, "h1", "state", "append", "node.remove",
                    json.dumps({"node": nodes["h3"]["key"]}))
    assert out.returncode == 0, out.stderr

    async def h3_gone() -> bool:
        for h in ("h1", "h2"):
            peers = await mesh_peers(lab, h)
            other = "h2" if h == "h1" else "h1"
            if keys["h3"] in peers or keys[other] not in peers:
                return False
        return True

    await _until(h3_gone, 30, every_s=0.5)
