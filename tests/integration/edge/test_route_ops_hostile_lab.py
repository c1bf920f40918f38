"""The lab for real (root, two hosts): h1 founds the network, h2 joins as a member. h2 then acts
hostilely: it signs route ops with its own key by hand, bypassing its replica, and pushes them
from inside its namespaces to h1 (tests/integration/hostile_push.py), as a peer's replication
would. Each is refused with a one-line reason and nothing is written; asking h1's API or its
own node to write a route fails too. The founder's route stands."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from lab_running import cli, found_and_join, running_lab
from test_hostile_lab import Chain, data_dir, push

from formation.api import state_routes as sr
from formation.identity.store import load_identity
from formation.lab import Lab
from tests.conftest import needs_root

pytestmark = [needs_root(), pytest.mark.root, pytest.mark.timeout(300)]

SPEC = {"image": "ab" * 32, "vcpus": 1, "memory_mb": 512, "disk_gb": 5, "ports": ["80/tcp"]}


@pytest.fixture(scope="module")
def lab():
    with running_lab(2, pretrust=False) as instance:
        yield instance


async def routes(lab: Lab, host: str) -> list[dict]:
    async with lab.client(host) as client:
        return (await client.call(sr.state_view, collection="routes")).items


async def test_a_member_node_cannot_write_routes(lab: Lab, tmp_path: Path) -> None:
    await found_and_join(lab, ["h2"])
    made = await cli(lab, "h1", "state", "append", "instance.create",
                     json.dumps({"name": "web", "spec": SPEC}), "--json")
    assert made.returncode == 0, made.stderr
    web = json.loads(made.stdout)["id"]
    added = await cli(lab, "h1", "route", "add", "www.example.com", "--to", "web", "--json")
    assert added.returncode == 0, added.stderr
    [standing] = await routes(lab, "h1")

    hostile = load_identity(data_dir(lab, "h2"))
    chain = await Chain.read(lab, "h1", hostile)
    now_ms = int(time.time() * 1000)
    take = chain.sign(hostile, "route.set", {
        "host": "evil.example.com", "protocol": "http", "port": 80, "instances": [web]},
        seq=chain.seq + 1, prev=chain.last, parents=chain.heads, hlc=(now_ms, 0))
    drop = chain.sign(hostile, "route.remove", {"route": standing["id"]},
                      seq=chain.seq + 1, prev=chain.last, parents=chain.heads, hlc=(now_ms, 1))
    h1 = f"{lab.host('h1').address}:7170"
    async with lab.client("h1") as client:
        before = (await client.call(sr.state_heads)).ops
    for raw in (take, drop):
        [result] = await push(lab, "h2", data_dir(lab, "h2"), [raw], [h1], tmp_path)
        pushed = result["result"]
        assert pushed["refused"] == 1 and pushed["accepted"] == 0, result
        [why] = pushed["refusals"]
        assert why["reason"] == "unauthorized" and "\n" not in why["message"]
        assert "member node may not write routes" in why["message"]
    async with lab.client("h1") as client:
        assert (await client.call(sr.state_heads)).ops == before  # nothing written
    # through the API: h2's own node signs as a member (refused by the rules), h1's API
    # refuses h2's signed request (admins only)
    own = await cli(lab, "h2", "route", "add", "h2.example.com", "--to", "web")
    assert own.returncode == 1 and len(own.stderr.strip().splitlines()) == 1, own.stderr
    assert "member node may not write routes" in own.stderr
    remote = await cli(lab, "h2", "route", "rm", "www.example.com", "--node", h1)
    assert remote.returncode == 1 and len(remote.stderr.strip().splitlines()) == 1
    assert [r["id"] for r in await routes(lab, "h1")] == [standing["id"]]
