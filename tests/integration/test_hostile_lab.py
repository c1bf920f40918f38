"""The lab for real (root), with one host acting hostilely. h1 founds a network, h2 joins as a
member and h3 as an admin. h3 then signs ops by hand with its own key, bypassing its replica:
one stamped ten years ahead, a hundred forks of one sequence number, and, after h1 removed it,
a backdated `node.admit` of a new admin whose first act removes the founder (relayed by the
honest member h2, as DESIGN.md's threat model assumes any member may relay). Meanwhile the
honest hosts keep writing, h2 is partitioned and healed, killed and restarted: they converge,
keep writing, the founder stays the network's admin and the forged admin gets nothing."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest
import yaml
from lab_running import cli, found, invite, running_lab
from waiting import until

from formation.api import state_routes as sr
from formation.identity import NodeIdentity
from formation.identity.store import load_identity
from formation.lab import Lab
from formation.node.state import wire
from formation.node.state.op import build_body, op_id_of, sign_body
from tests.conftest import needs_root

pytestmark = [needs_root(), pytest.mark.root, pytest.mark.timeout(300)]

PUSH = str(Path(__file__).with_name("hostile_push.py"))
TEN_YEARS_MS = 10 * 365 * 24 * 3600 * 1000
FORKS = 100


async def cli_json(lab: Lab, host: str, *args: str):
    out = await cli(lab, host, *args, "--json")
    assert out.returncode == 0, f"{host} {args}: {out.stderr}"
    return json.loads(out.stdout)


def data_dir(lab: Lab, host: str) -> Path:
    return Path(yaml.safe_load(lab.config_path(host).read_text())["data_dir"])


class Chain:
    """Where a host's own chain of ops stands in a replica, read through the API: what a
    hostile author needs to sign further ops of its own by hand."""

    def __init__(self, network: bytes, seq: int, last: bytes | None, heads: list[bytes],
                 hlc: tuple[int, int]) -> None:
        self.network, self.seq, self.last, self.heads, self.hlc = network, seq, last, heads, hlc

    @classmethod
    async def read(cls, lab: Lab, host: str, author: NodeIdentity) -> Chain:
        async with lab.client(host) as client:
            status = await client.call(sr.state_status)
            seq, last, hlc, after = 0, None, (0, 0), 0
            while True:
                page = await client.call(sr.state_log, query=sr.sm.LogQuery(after=after,
                                                                            limit=1000))
                for op in page.ops:
                    hlc = max(hlc, (op.hlc[0], op.hlc[1]))
                    if op.author == author.public_key_hex and op.seq > seq:
                        seq, last = op.seq, bytes.fromhex(op.id)
                if page.next_after is None:
                    break
                after = page.next_after
        return cls(bytes.fromhex(status.network), seq, last,
                   [bytes.fromhex(h) for h in status.heads], hlc)

    def sign(self, who: NodeIdentity, kind: str, payload: dict, *, seq: int, prev: bytes | None,
             parents: list[bytes], hlc: tuple[int, int]) -> bytes:
        body = build_body(self.network, who.public_key, seq, prev, parents, hlc, kind, payload)
        return sign_body(body, who.sign)


async def push(lab: Lab, via: str, signer_dir: Path, raws: list[bytes], targets: list[str],
               tmp: Path) -> list[dict]:
    """Pushes the envelopes from inside host `via`, the request signed with the key in
    `signer_dir`, to each of `targets` (host:port)."""
    batch = tmp / f"batch-{time.monotonic_ns()}.json"
    batch.write_text(json.dumps({"ops": wire.pack(raws), "count": len(raws)}))
    out = await asyncio.to_thread(lab.exec, via, [sys.executable, PUSH, str(signer_dir),
                                                  str(batch), *targets],
                                  capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


async def heads(lab: Lab, host: str) -> list[str]:
    async with lab.client(host) as client:
        return (await client.call(sr.state_heads)).heads


async def same_heads(lab: Lab, hosts: list[str]) -> list[str] | None:
    seen = [await heads(lab, h) for h in hosts]
    return seen[0] if all(h == seen[0] for h in seen) and seen[0] else None


async def admins(lab: Lab, host: str) -> list[str]:
    async with lab.client(host) as client:
        (network,) = (await client.call(sr.state_view, collection="network")).items
    return network["admins"]


async def honest_write(lab: Lab, host: str, tag: str) -> dict:
    """An honest write: its HLC must be near wall time, never pulled into the future."""
    if host == "h1":  # the admin names things; a member writes its own node record
        kind, record = "dns.set", {"name": f"{tag}.fog", "type": "A", "value": "10.42.0.9"}
    else:
        kind, record = "node.record", {"name": host}
    op = await cli_json(lab, host, "state", "append", kind, json.dumps(record))
    assert abs(op["hlc"][0] - time.time() * 1000) < 60_000, op["hlc"]
    return op


@pytest.fixture(scope="module")
def lab():
    with running_lab(3, pretrust=False) as instance:
        yield instance


async def test_honest_hosts_hold_against_a_hostile_admin(lab: Lab, tmp_path: Path):
    await found(lab)
    member = await invite(lab)
    assert (await cli(lab, "h2", "join", member)).returncode == 0
    admin = (await cli_json(lab, "h1", "invite", "create", "--role", "admin",
                            "--expires", "10m"))["token"]
    assert (await cli(lab, "h3", "join", admin)).returncode == 0
    hosts = ["h1", "h2", "h3"]
    await until(lambda: same_heads(lab, hosts), timeout_s=45)
    founder = load_identity(data_dir(lab, "h1"))
    hostile = load_identity(data_dir(lab, "h3"))
    assert sorted(await admins(lab, "h1")) == sorted([founder.public_key_hex,
                                                      hostile.public_key_hex])
    targets = ["10.77.0.11:7170", "10.77.0.12:7170"]

    # Forks: a hundred ops with one sequence number, and one stamped ten years ahead on top.
    chain = await Chain.read(lab, "h1", hostile)
    now_ms = int(time.time() * 1000)
    forks = [chain.sign(hostile, "node.record", {"name": "h3", "resources": {"fork": i}},
                        seq=chain.seq + 1, prev=chain.last, parents=chain.heads, hlc=(now_ms, i))
             for i in range(FORKS)]
    future = chain.sign(hostile, "node.record", {"name": "h3"}, seq=chain.seq + 2,
                        prev=op_id_of(forks[0]), parents=[op_id_of(forks[0])],
                        hlc=(now_ms + TEN_YEARS_MS, 0))
    results = await push(lab, "h3", data_dir(lab, "h3"), [*forks, future], targets, tmp_path)
    assert all("result" in r for r in results), results
    for host in ("h1", "h2"):  # the op ten years ahead waits; it moved no clock
        assert (await cli_json(lab, host, "state", "status"))["held_future"] == 1, host
    await honest_write(lab, "h1", "during-forks")
    await honest_write(lab, "h2", "during-forks")

    # Removal, then the removed admin's backdated admission of a new admin, relayed by h2.
    before_removal = await Chain.read(lab, "h1", hostile)
    removed = await cli(lab, "h1", "network", "remove-node", hostile.node_id)
    assert removed.returncode == 0, removed.stderr
    await until(lambda: same_heads(lab, ["h1", "h2"]), timeout_s=30)
    forged = NodeIdentity.generate()
    backdated = before_removal.sign(
        hostile, "node.admit", {"node": forged.public_key_hex, "roles": ["admin"]},
        seq=before_removal.seq + 1, prev=before_removal.last, parents=before_removal.heads,
        hlc=(before_removal.hlc[0], before_removal.hlc[1] + 1))
    coup = before_removal.sign(
        forged, "node.remove", {"node": founder.public_key_hex}, seq=1, prev=None,
        parents=[op_id_of(backdated)], hlc=(before_removal.hlc[0], before_removal.hlc[1] + 2))
    relayed = await push(lab, "h2", data_dir(lab, "h2"), [backdated, coup], targets, tmp_path)
    assert all("result" in r for r in relayed), relayed

    # The honest hosts keep writing through a partition and a restart, and converge.
    await asyncio.to_thread(lab.partition, ["h2"])
    try:
        await honest_write(lab, "h1", "cut-h1")
        await honest_write(lab, "h2", "cut-h2")
    finally:
        await asyncio.to_thread(lab.heal)
    await asyncio.to_thread(lab.kill, "h2")
    await asyncio.to_thread(lab.start, "h2")
    await honest_write(lab, "h2", "restarted")
    await honest_write(lab, "h1", "after")
    await until(lambda: same_heads(lab, ["h1", "h2"]), timeout_s=60)
    for host in ("h1", "h2"):
        assert await admins(lab, host) == [founder.public_key_hex], host
        status = await cli_json(lab, host, "state", "status")
        assert any(e["author"] == hostile.public_key_hex for e in status["equivocations"])
    await cli_json(lab, "h1", "invite", "create", "--expires", "5m")  # h1 is still an admin
