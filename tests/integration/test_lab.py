"""The lab for real (root): three hosts in their own namespaces, real node processes, real
mDNS on the lab bridge. Discovery, failure detection, revival, partition and heal; afterwards
nothing of the lab may be left on the machine."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lab_running import assert_nothing_left, running_lab
from waiting import until as _until

from formation.api import discovery_routes, p2p_routes
from formation.api.p2p_models import PublishRequest
from formation.lab import Lab
from formation.lab.lab import LabError, leftovers
from formation.lab.names import STATE_ROOT
from tests.conftest import needs_root

pytestmark = [needs_root(), pytest.mark.root, pytest.mark.timeout(180)]

HOSTS = ("h1", "h2", "h3")


@pytest.fixture(scope="module")
def lab():
    with running_lab(3) as instance:
        yield instance




async def _states(lab: Lab, host: str) -> dict[str, str]:
    async with lab.client(host) as client:
        return {m.name: m.state for m in (await client.call(p2p_routes.members)).members}


async def _everyone_sees(lab: Lab, hosts, target: str, state: str) -> bool:
    views = [await _states(lab, h) for h in hosts]
    return all(view.get(target) == state for view in views)


async def _full_mesh_alive(lab: Lab) -> bool:
    """Every host sees every other host alive (a restarted host may not have heard all yet)."""
    for host in HOSTS:
        view = await _states(lab, host)
        if view != {other: "alive" for other in HOSTS if other != host}:
            return False
    return True


async def _publish(lab: Lab, host: str, n: object) -> str:
    """A gossip message published on `host`; its id."""
    async with lab.client(host) as client:
        sent = await client.call(p2p_routes.gossip_publish,
                                 PublishRequest(topic="state", payload={"n": n}))
    return sent.id


async def _streams_live(lab: Lab, seen: dict[str, set[str]]) -> None:
    """Until each host's event stream (collecting gossip ids into seen[host]) has carried a
    probe: a stream subscribes some time after it is opened, so probes are sent until one
    arrives (h1's from h2, the others' from h1)."""
    sent: dict[str, set[str]] = {h: set() for h in seen}

    async def probed() -> bool:
        for host in seen:
            if not sent[host] & seen[host]:
                sent[host].add(await _publish(lab, "h2" if host == "h1" else "h1", "probe"))
        return all(sent[h] & seen[h] for h in seen)

    await _until(probed, timeout_s=10, every_s=0.2, what=f"a probe on the streams of {list(seen)}")


async def test_every_host_discovers_the_others_via_mdns(lab: Lab):
    async def all_found():
        for host in HOSTS:
            async with lab.client(host) as client:
                found = await client.call(discovery_routes.discovery_peers)
            mdns = {p.name for p in found.peers if "mdns" in p.sources}
            if mdns != set(HOSTS) - {host}:
                return False
        return True

    await _until(all_found, timeout_s=30)
    async with lab.client("h1") as client:
        found = await client.call(discovery_routes.discovery_peers)
    assert found.mdns == "on 10.77.0.11"
    assert {p.address for p in found.peers} == {"10.77.0.12:7170", "10.77.0.13:7170"}
    assert all(p.kind == "unenrolled" and p.trusted for p in found.peers)
    # ... and `formation peers` inside a host says the same, as a person would run it.
    out = await asyncio.to_thread(lab.exec, "h2", ["formation", "peers"], capture_output=True,
                                  text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "h1" in out.stdout and "h3" in out.stdout and "mdns" in out.stdout


async def test_killed_host_is_marked_dead_then_revived(lab: Lab):
    await _until(lambda: _everyone_sees(lab, ("h1", "h2"), "h3", "alive"), timeout_s=20)
    async with lab.client("h1") as client:
        stream = client.events()  # every topic: a gossip probe shows the stream is live
        kinds: list[str] = []
        gossip: dict[str, set[str]] = {"h1": set()}

        async def watch():
            async for event in stream:
                if event.topic == "gossip":
                    gossip["h1"].add(event.data.get("id"))
                elif event.topic == "membership" and event.data.get("name") == "h3":
                    kinds.append(event.kind)
                    if event.kind == "revived":
                        return

        watcher = asyncio.create_task(watch())
        await _streams_live(lab, gossip)
        killed_at = time.monotonic()
        await asyncio.to_thread(lab.kill, "h3")
        await _until(lambda: _everyone_sees(lab, ("h1", "h2"), "h3", "dead"), timeout_s=15)
        detected_s = time.monotonic() - killed_at
        await asyncio.to_thread(lab.start, "h3")
        await asyncio.wait_for(watcher, 20)
    assert kinds == ["suspect", "dead", "revived"]
    # Within the configured dead_after (2.5 s) plus generous slack for a loaded machine;
    # the benchmark measures the real number.
    assert detected_s < 3.0 + 1.0 + 2.0, detected_s
    await _until(lambda: _everyone_sees(lab, ("h1", "h2"), "h3", "alive"), timeout_s=15)


async def test_partition_then_heal_lets_gossip_flow_again(lab: Lab):
    await _until(lambda: _full_mesh_alive(lab), timeout_s=20)
    seen: dict[str, set[str]] = {h: set() for h in HOSTS}
    clients = {h: lab.client(h) for h in HOSTS}

    async def collect(host: str):
        async for event in clients[host].events(topic="gossip"):
            seen[host].add(event.data["id"])

    watchers = [asyncio.create_task(collect(h)) for h in HOSTS]
    try:
        await _streams_live(lab, seen)
        await asyncio.to_thread(lab.partition, ["h3"])
        await _until(lambda: _everyone_sees(lab, ("h1", "h2"), "h3", "dead"), timeout_s=15)
        await _until(lambda: _everyone_sees(lab, ("h3",), "h1", "dead"), timeout_s=15)

        during = await clients["h1"].call(p2p_routes.gossip_publish,
                                          PublishRequest(topic="state", payload={"n": 1}))

        async def reached_h2():
            return during.id in seen["h2"]

        await _until(reached_h2, timeout_s=10)
        assert during.id not in seen["h3"]

        await asyncio.to_thread(lab.heal)
        await _until(lambda: _full_mesh_alive(lab), timeout_s=20)
        after = await clients["h3"].call(p2p_routes.gossip_publish,
                                         PublishRequest(topic="state", payload={"n": 2}))

        async def flowed():
            return after.id in seen["h1"] and after.id in seen["h2"]

        await _until(flowed, timeout_s=10)
    finally:
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        for client in clients.values():
            await client.close()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "formation", "lab", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_down_removes_a_lab_whose_process_is_gone():
    """`lab up` from the CLI returns and leaves the lab running: the process that made it is
    gone, as after a crash. A torn state file must not stop `down` from finding everything."""
    lab_id = "c" + os.urandom(2).hex()
    try:
        made = _cli("--name", lab_id, "up", "2")
        assert made.returncode == 0, made.stderr
        left = leftovers(lab_id)
        assert len(left["namespaces"]) == 3 and len(left["processes"]) >= 4, left
        status = json.loads(_cli("--name", lab_id, "status", "--json").stdout)
        assert [(h["name"], h["healthy"]) for h in status["hosts"]] == [("h1", True), ("h2", True)]
        assert _cli("--name", lab_id, "exec", "h2", "--", "sh", "-c", "exit 3").returncode == 3
        mounts = _cli("--name", lab_id, "exec", "h2", "--", "cat", "/proc/self/mountinfo").stdout
        tag = f"fl-{lab_id}-h2"
        assert {line.split()[4] for line in mounts.splitlines() if f" {tag} " in line} == {
            "/run/formation", "/run/wireguard"}
        addr = _cli("--name", lab_id, "exec", "h2", "--", "ip", "-4", "-o", "addr").stdout
        assert "eth0    inet 10.77.0.12/24" in addr and "10.77.0.11" not in addr
        (STATE_ROOT / lab_id / "lab.json").write_text("{torn")
        gone = _cli("--name", lab_id, "down")
        assert gone.returncode == 0, gone.stderr
        assert "removed 3 namespaces" in gone.stdout
    finally:
        with contextlib.suppress(Exception):
            from formation.lab.lab import destroy

            destroy(lab_id)
    assert_nothing_left(lab_id)


def test_lab_refuses_bad_input_clearly():
    with pytest.raises(Exception, match="host count 21: expected 1 to 20"):
        Lab(21)
    with pytest.raises(Exception, match="expected 1 to 6 of a-z, 0-9"):
        Lab(2, "Bad_Name")
    bad = Lab(2, node_overrides={"membership": {"dead_after_s": 0.5}})
    with pytest.raises(Exception, match="node settings for the lab: membership: "):
        bad.up()
    assert_nothing_left(bad.lab_id)  # a failed `up` takes down what it had made
    result = _cli("--name", "nolab", "status")
    assert result.returncode == 1
    assert result.stderr.strip() == ("formation: error: no lab 'nolab' is up "
                                     "(start one: formation lab up 3)")
    assert not Path("/run/formation-lab/nolab").exists()


NOT_ROOT = ("formation: error: formation lab needs root: it creates network and mount namespaces "
            "(try: sudo formation lab up 3)")


def _as_nobody(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           sys.executable, *args],
                          capture_output=True, text=True, timeout=60, check=False, cwd="/")


def test_lab_up_refuses_without_root(monkeypatch):
    """As the user nobody for real where the checkout is readable to it; where it is not (a
    checkout in a 0700 directory), the same command in-process with a non-root euid."""
    if shutil.which("setpriv") and _as_nobody("-c", "import formation.cli").returncode == 0:
        result = _as_nobody("-m", "formation", "lab", "--name", "nobody", "up", "2")
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip() == NOT_ROOT
    else:
        from click.testing import CliRunner

        from formation.cli import cli

        monkeypatch.setattr(os, "geteuid", lambda: 65534)
        result = CliRunner().invoke(cli, ["lab", "--name", "nobody", "up", "2"])
        assert isinstance(result.exception, LabError)
        assert f"formation: error: {result.exception}" == NOT_ROOT
    assert_nothing_left("nobody")


async def test_without_pretrust_hosts_find_each_other_but_exchange_nothing():
    """The shape a join test starts from: discovered, listed as untrusted, no gossip."""
    async with Lab(2, pretrust=False) as lab:
        async def found_untrusted():
            async with lab.client("h1") as client:
                peers = (await client.call(discovery_routes.discovery_peers)).peers
            return [p for p in peers if p.name == "h2" and "mdns" in p.sources]

        (h2,) = await _until(found_untrusted, timeout_s=30)
        assert h2.trusted is False
        await asyncio.sleep(1.5)  # more than a heartbeat: nothing may have been exchanged
        assert await _states(lab, "h1") == {}
        async with lab.client("h1") as client:
            assert (await client.call(p2p_routes.gossip_status)).peers == []
        lab_id = lab.lab_id
    assert_nothing_left(lab_id)
