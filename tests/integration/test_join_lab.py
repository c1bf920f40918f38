"""Founding and joining on the lab for real (root): real node processes in their own namespaces,
no key trusted in advance (`pretrust=False`). h1 founds a network; h2 joins with an invite token
through the `formation` CLI, typed as a person would (lower case, groups as separate words); used,
expired, mistyped and cut tokens are refused, and one pinning another admin key reaches nobody;
h3 asks without a token, is not admitted until h1 approves, then converges. Afterwards nothing
of the lab is left.
The 5-host variant (marked slow) adds a rejected request and a host of another network."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest
from lab_running import (
    asking_to_join,
    assert_nothing_left,
    cli,
    first_pending,
    found,
    invite,
    nodes_view,
    running_lab,
)
from waiting import until as _until

from formation.api import discovery_routes, p2p_routes, state_routes
from formation.discovery import token as tokens
from formation.lab import Lab
from tests.conftest import needs_root

pytestmark = [needs_root(), pytest.mark.root, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def lab():
    with running_lab(3, pretrust=False) as instance:
        yield instance


async def converged(lab: Lab, hosts: list[str]) -> bool:
    """Every host lists every other as an alive member and all replicas have the same heads."""
    heads = set()
    for host in hosts:
        async with lab.client(host) as client:
            members = (await client.call(p2p_routes.members)).members
            heads.add(tuple((await client.call(state_routes.state_heads)).heads))
        if {m.name for m in members if m.state == "alive"} != set(hosts) - {host}:
            return False
    return len(heads) == 1


async def _names(lab: Lab, host: str) -> set[str]:
    return set(await nodes_view(lab, host))


async def test_found_invite_join_and_refusals(lab: Lab):
    await found(lab)
    token = await invite(lab)
    assert token.startswith("FMN2-") and len(token.replace("-", "")) < 100
    out = await cli(lab, "h2", "join", *token.lower().split("-"))
    assert out.returncode == 0, out.stderr
    assert "admitted to network 'lab'" in out.stdout and "joined network lab" in out.stdout
    await _until(lambda: converged(lab, ["h1", "h2"]), 30)

    # As a person sees it: the token on stdout, a QR code of it below.
    out = await cli(lab, "h1", "invite", "create", "--qr")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("FMN2-") and any("\u2588" in line or "\u2580" in line
                                               for line in lines[1:])
    # The same token again, from another host: used.
    out = await cli(lab, "h3", "join", token)
    assert out.returncode != 0 and "Token already used" in out.stderr, out.stderr
    # An expired token.
    short = await invite(lab, "1s")
    await asyncio.sleep(1.5)
    out = await cli(lab, "h3", "join", short)
    assert out.returncode != 0 and "Token expired" in out.stderr, out.stderr
    # A mistyped token (one character changed), and a cut one: told before any contact.
    fresh = await invite(lab)
    i = len(fresh) // 2 if fresh[len(fresh) // 2] != "-" else len(fresh) // 2 + 1
    other = tokens.ALPHABET[(tokens.ALPHABET.index(fresh[i]) + 1) % 32]
    out = await cli(lab, "h3", "join", fresh[:i] + other + fresh[i + 1:])
    assert out.returncode != 0 and "checksum does not match" in out.stderr, out.stderr
    out = await cli(lab, "h3", "join", fresh[:40])
    assert out.returncode != 0 and "too short" in out.stderr, out.stderr
    # A well-formed token pinning another key: the endpoint is no such admin, nobody is asked.
    forged = dataclasses.replace(tokens.decode(fresh), pin=bytes(16)).encode()
    out = await cli(lab, "h3", "join", forged)
    assert out.returncode != 0 and "answered as another node" in out.stderr, out.stderr
    # None of that admitted h3, nor left a trace in its replica.
    assert await _names(lab, "h1") == {"h1", "h2"}
    async with lab.client("h3") as client:
        assert (await client.call(state_routes.state_status)).network is None
    # mDNS says so too: h1 and h2 re-announced their network, h3 still advertises none.
    async with lab.client("h1") as client:
        network = (await client.call(state_routes.state_status)).network

    async def advertised() -> bool:
        async with lab.client("h3") as client:
            found = (await client.call(discovery_routes.discovery_peers)).peers
        seen = {(p.name, p.network) for p in found if "mdns" in p.sources}
        return seen >= {("h1", network), ("h2", network)}

    await _until(advertised, 15)
    # The bootstrap endpoint down: said so.
    await asyncio.to_thread(lab.kill, "h1")
    try:
        out = await cli(lab, "h3", "join", fresh)
        assert out.returncode != 0 and "Bootstrap unreachable" in out.stderr, out.stderr
    finally:
        await asyncio.to_thread(lab.start, "h1")


async def test_join_without_token_waits_for_approval(lab: Lab):
    """Needs the network of the test above (h1 admin, h2 member)."""
    async with asking_to_join(lab, "h3", "--json") as asker:
        pending_id = await _until(lambda: first_pending(lab), 20, what="h3's request on h1")

        async def asked_again() -> bool:  # the positive control: h1 hears h3 ask once more
            out = await cli(lab, "h1", "join", "pending", "--json")
            return any(p["asks"] >= 2 for p in json.loads(out.stdout)["pending"])

        await _until(asked_again, 30)  # it keeps asking; still not a member
        assert asker.returncode is None
        assert await _names(lab, "h1") == {"h1", "h2"}
        out = await cli(lab, "h1", "join", "approve", pending_id)
        assert out.returncode == 0 and "admitted" in out.stdout, out.stderr
        stdout, stderr = await asyncio.wait_for(asker.communicate(), 60)
    assert asker.returncode == 0, stderr.decode()
    assert json.loads(stdout)["network_name"] == "lab"
    await _until(lambda: converged(lab, ["h1", "h2", "h3"]), 30)
    for host in ("h1", "h2", "h3"):
        assert await _names(lab, host) == {"h1", "h2", "h3"}
    out = await cli(lab, "h1", "join", "pending", "--json")
    assert json.loads(out.stdout)["pending"] == []


async def test_partitioned_writes_converge_after_heal(lab: Lab):
    """Both sides of a partition write; after `lab heal` every replica has every op."""
    hosts = ["h1", "h2", "h3"]
    await _until(lambda: converged(lab, hosts), 30)
    await asyncio.to_thread(lab.partition, ["h3"])
    try:
        record = {"name": "db.fog", "type": "A", "value": "10.42.0.9"}
        out = await cli(lab, "h1", "state", "append", "dns.set", json.dumps(record), "--json")
        assert out.returncode == 0, out.stderr
        admin_op = json.loads(out.stdout)["id"]
        out = await cli(lab, "h3", "state", "append", "node.record", '{"name": "h3"}', "--json")
        assert out.returncode == 0, out.stderr
        cut_off_op = json.loads(out.stdout)["id"]

        async def on_h2() -> bool:  # the positive control: the write does replicate, to h2
            async with lab.client("h2") as client:
                dns = await client.call(state_routes.state_view, collection="dns")
            return "db.fog" in json.dumps(dns.items)

        await _until(on_h2, 30)
        async with lab.client("h3") as client:
            dns = await client.call(state_routes.state_view, collection="dns")
        assert "db.fog" not in json.dumps(dns.items), "the partition did not cut h3 off"
    finally:
        await asyncio.to_thread(lab.heal)
    await _until(lambda: converged(lab, hosts), 45)
    for host in hosts:
        async with lab.client(host) as client:
            for op_id in (admin_op, cut_off_op):
                assert (await client.call(state_routes.state_op, op_id=op_id)).id == op_id


@pytest.mark.slow
async def test_five_hosts_join_and_a_rejected_request():
    lab = Lab(5, pretrust=False)
    await asyncio.to_thread(lab.up)
    try:
        await found(lab)
        for host in ("h2", "h3", "h4"):
            out = await cli(lab, host, "join", await invite(lab))
            assert out.returncode == 0, out.stderr
        async with asking_to_join(lab, "h5", wait_s=30) as asker:
            pending_id = await _until(lambda: first_pending(lab), 20, what="h5's request")
            out = await cli(lab, "h1", "join", "reject", pending_id)
            assert out.returncode == 0 and "rejected" in out.stdout
            _, stderr = await asyncio.wait_for(asker.communicate(), 30)
        assert asker.returncode != 0 and "rejected" in stderr.decode()
        # h5 founds a network of its own; a token for h1's network is then refused on h5.
        out = await cli(lab, "h5", "network", "create", "other")
        assert out.returncode == 0, out.stderr
        out = await cli(lab, "h5", "join", await invite(lab))
        assert out.returncode != 0 and "already belongs to network" in out.stderr, out.stderr
        hosts = ["h1", "h2", "h3", "h4"]
        await _until(lambda: converged(lab, hosts), 40)
        assert await _names(lab, "h4") == set(hosts)
    finally:
        await asyncio.to_thread(lab.down)
        assert_nothing_left(lab.lab_id)
