"""Node-to-node traffic on the mesh, on the lab (root, real node processes, real wireguard-go,
each host in its own network and mount namespace). After h1 founds and h2, h3 join:

- gossip and state replication use the peers' mesh addresses, and a capture on the underlay
  switch during heartbeats and a replicated state write shows only WireGuard (UDP 51820), mDNS
  and IGMP: no TCP at all, so none to the API port;
- h3's underlay address is replaced: h3 notices, rewrites its `wg_endpoints`, the others point
  at the new address, handshakes go on, TCP over the mesh and replication from h3 still work
  (h3's old underlay API address is gone, so its writes can only travel over the mesh)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from pathlib import Path

import pytest
from lab_running import cli, invite, nodes_view, running_lab
from waiting import until as _until

from formation.api import mesh_routes, p2p_routes, state_routes
from formation.api.client import ApiError
from formation.lab import Lab
from formation.lab.names import API_PORT, PREFIXLEN
from tests.conftest import needs_root

pytestmark = [needs_root(), pytest.mark.root, pytest.mark.timeout(240)]

HOSTS = ["h1", "h2", "h3"]
OVERRIDES = {"mesh": {"enabled": True, "backend": "wireguard-go", "status_interval_s": 1.0}}
MOVED = "10.77.0.113"  # h3's new underlay address (same lab subnet)
CAPTURE_S = 5.0


@pytest.fixture(scope="module")
def lab():
    with running_lab(3, pretrust=False, node_overrides=OVERRIDES) as instance:
        yield instance


async def call(lab: Lab, host: str, endpoint, **params):
    async with lab.client(host) as client:
        return await client.call(endpoint, **params)


async def invites_on(lab: Lab, host: str) -> set[str]:
    view = await call(lab, host, state_routes.state_view, collection="invites")
    return {i["key"] for i in view.items}


async def underlay_capture(lab: Lab, path: Path, seconds: float,
                           listening: asyncio.Event) -> str:
    """tcpdump on every port of the lab's switch (the hub namespace) for `seconds` from when it
    listens (set `listening` then); returns tcpdump's own report."""
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", lab.names.hub, "tcpdump", "-Z", "root", "--immediate-mode",
        "-i", "any", "-U", "-n", "-s", "128", "-w", str(path),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    try:
        seen = b""
        while b"listening on" not in seen:
            line = await asyncio.wait_for(proc.stderr.readline(), 10)
            assert line, f"tcpdump did not start: {seen!r}"
            seen += line
        listening.set()
        await asyncio.sleep(seconds)  # the window the test looks at: heartbeats and a write
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        report = (await asyncio.wait_for(proc.stderr.read(), 10)).decode()
        await asyncio.wait_for(proc.wait(), 10)
    return report


def read_capture(path: Path, bpf: str) -> list[str]:
    out = subprocess.run(["tcpdump", "-r", str(path), "-n", bpf], capture_output=True,
                         text=True, timeout=30, check=True)
    return out.stdout.splitlines()


async def mesh_status(lab: Lab, host: str):
    status = await call(lab, host, mesh_routes.mesh_status)
    assert status.up, status.error
    return status


@pytest.mark.network(fields=("address", "wg_endpoints"))
async def test_traffic_moves_onto_the_mesh_and_follows_an_underlay_change(lab: Lab, network,
                                                                          tmp_path):
    nodes = network
    mesh = {h: nodes[h]["address"] for h in HOSTS}
    names = {nodes[h]["key"]: h for h in HOSTS}

    async def on_the_mesh() -> bool:
        """Every host gossips and replicates to the others' mesh addresses only."""
        for h in HOSTS:
            want = {f"{mesh[o]}:{API_PORT}" for o in HOSTS if o != h}
            gossip = await call(lab, h, p2p_routes.gossip_status)
            state = await call(lab, h, state_routes.state_status)
            if {p.address for p in gossip.peers} != want:
                return False
            if {p.address for p in state.peers} != want or not all(p.ok for p in state.peers):
                return False
        return True

    await _until(on_the_mesh, 60, every_s=0.5)
    members = (await call(lab, "h1", p2p_routes.members)).members
    assert {m.name for m in members if m.handshake_age_s is not None} == {"h2", "h3"}

    # The underlay during heartbeats, anti-entropy and one replicated write: WireGuard only.
    before = await invites_on(lab, "h3")
    capture = tmp_path / "underlay.pcap"
    listening = asyncio.Event()
    capturing = asyncio.create_task(underlay_capture(lab, capture, CAPTURE_S, listening))
    await asyncio.wait_for(listening.wait(), 15)
    await invite(lab)  # an op written on h1

    async def replicated() -> bool:
        return len(await invites_on(lab, "h3")) == len(before) + 1

    await _until(replicated, CAPTURE_S - 1.5, every_s=0.2)
    report = await capturing
    wireguard = read_capture(capture, "udp port 51820")
    assert len(wireguard) > 10, f"the capture saw almost no WireGuard traffic: {report}"
    assert read_capture(capture, "tcp") == []
    assert read_capture(capture, "ip and not igmp and not (udp port 51820 or udp port 5353)") \
        == []

    # h3 moves: a new underlay address replaces the old one.
    moved_at = time.monotonic()
    old = lab.host("h3").address
    # (deleting first: removing a primary address takes its secondaries with it)
    for argv in (["ip", "addr", "del", f"{old}/{PREFIXLEN}", "dev", "eth0"],
                 ["ip", "addr", "add", f"{MOVED}/{PREFIXLEN}", "dev", "eth0"]):
        done = await asyncio.to_thread(lab.exec, "h3", argv, capture_output=True, text=True,
                                       timeout=10)
        assert done.returncode == 0, done.stderr

    seen: dict[str, object] = {}

    async def repointed() -> bool:
        for h in ("h1", "h2"):
            record = (await nodes_view(lab, h))["h3"]
            peer = next(p for p in (await mesh_status(lab, h)).peers
                        if names.get(p.node_id or "") == "h3")
            seen[h] = (record.get("wg_endpoints"), peer.endpoint, peer.handshake_age_s)
            if record.get("wg_endpoints") != [f"{MOVED}:51820"]:
                return False
            if peer.endpoint != f"{MOVED}:51820" or peer.handshake_age_s is None:
                return False
        return True

    try:
        await _until(repointed, 30, every_s=0.5)
    except AssertionError:
        raise AssertionError(f"h3's endpoint as h1, h2 see it: {seen}") from None
    for src, dst in (("h1", "h3"), ("h3", "h2")):
        ping = await asyncio.to_thread(
            lab.exec, src, ["busybox", "ping", "-c", "1", "-W", "3", mesh[dst]],
            capture_output=True, text=True, timeout=15)
        assert ping.returncode == 0, f"{src} -> {dst}: {ping.stdout}{ping.stderr}"
    print(f"h3 moved; peers re-pointed and the mesh answered after "
          f"{time.monotonic() - moved_at:.1f} s")

    # A write on h3 reaches h1: h3's underlay API address is gone, so over the mesh.
    out = await cli(lab, "h3", "state", "append", "node.record",
                    '{"name": "h3", "resources": {"cpus": 1}}')
    assert out.returncode == 0, out.stderr
    op_id = out.stdout.strip()

    async def h3_write_replicated() -> bool:
        # the op itself, not the record's `resources`: h3's node writes its own offer back
        # there within a second, so that value was on h1 only for a moment
        try:
            await call(lab, "h1", state_routes.state_op, op_id=op_id)
        except ApiError:
            return False
        return True

    await _until(h3_write_replicated, 20, every_s=0.5)
