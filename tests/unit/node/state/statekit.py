"""Builders for state store tests: replicas on real SQLite files, writers with real keys, and
hand-made (including hostile) ops."""

from __future__ import annotations

import os
import random
from pathlib import Path

from hypothesis import strategies as st

from formation.identity import NodeIdentity
from formation.node.state.op import Op, build_body, decode, sign_body
from formation.node.state.replica import Replica

NETWORK = bytes.fromhex("00112233445566778899aabbccddeeff")


def replica(base: Path, name: str, durable: bool = False) -> Replica:
    return Replica(base / f"{name}.db", durable=durable)


def all_raws(r: Replica) -> list[bytes]:
    return [raw for _, raw in r.log_page(0, 10**9)]


def sync(dst: Replica, src: Replica) -> None:
    dst.ingest(all_raws(src))


def write(r: Replica, who: NodeIdentity, kind: str, payload: dict) -> Op:
    return r.append(who.sign, who.public_key, kind, payload)


def found(base: Path, admin: NodeIdentity, members: list[NodeIdentity],
          name: str = "a") -> Replica:
    """A replica with a network founded by `admin` and `members` admitted."""
    r = replica(base, name)
    r.create_network(admin.sign, admin.public_key, NETWORK, "lab", "10.42.0.0/24")
    for m in members:
        write(r, admin, "node.admit", {"node": m.public_key_hex, "roles": ["member"]})
    return r


def craft(who: NodeIdentity, r: Replica, kind: str, payload: dict, *, seq: int | None = None,
          prev: bytes | None = None, parents: list[bytes] | None = None,
          hlc: tuple[int, int] | None = None, network: bytes = NETWORK) -> bytes:
    """Signs an op by hand, bypassing the replica's own checks (for hostile input)."""
    if seq is None:
        seq = r.vv.get(who.public_key, 0) + 1
        if seq > 1 and prev is None:
            prev = r.db.execute("SELECT id FROM ops WHERE author=? AND seq=?",
                                (who.public_key, seq - 1)).fetchone()[0]
    parents = sorted(r.heads) if parents is None else parents
    hlc = hlc or (r.clock.last[0] + 1, 0)
    return sign_body(build_body(network, who.public_key, seq, prev, parents, hlc, kind, payload),
                     who.sign)


def views(r: Replica) -> dict:
    from formation.node.state import views as v

    return v.snapshot(r.db)


def ids(r: Replica) -> set[bytes]:
    return {decode(raw).id for raw in all_raws(r)}


def random_key() -> str:
    return os.urandom(32).hex()


async def found_with_member(client) -> NodeIdentity:
    """Through a running node's API (`client`): founds network "lab" and admits a fresh member,
    whose key a test then signs hostile or forked ops with."""
    from formation.api import state_models as sm
    from formation.api import state_routes as sr

    await client.call(sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    member = NodeIdentity.generate()
    await client.call(sr.state_append, sm.AppendRequest(
        kind="node.admit", payload={"node": member.public_key_hex, "roles": ["member"]}))
    return member


IMAGE = "ab" * 32  # an image digest for specs (rules check its form, not that it exists)


def spec(**over) -> dict:
    """A valid instance spec (the smallest the limits allow), with `over` replacing fields."""
    return {"image": IMAGE, "vcpus": 1, "memory_mb": 512, "disk_gb": 5, **over}


def image_payload(name: str, kernel: str | None = None, size: int = 1,
                  cmdline: str = "console=ttyS0") -> dict:
    """A valid image.add payload: a kernel part (random digest unless given) and its digest."""
    from formation.node.state.image_manifest import image_digest

    parts = {"kernel": {"digest": kernel or os.urandom(32).hex(), "size": size}}
    return {"digest": image_digest(parts, cmdline), "name": name, "size": size,
            "parts": parts, "cmdline": cmdline}


# The property tests' shuffler: drawn once as an integer, then a plain Random. With st.randoms
# every shuffle drew from hypothesis, as many draws as the run had ops, and that count can change
# with the wall clock between a run and its replay: hypothesis then calls the strategy flaky.
SHUFFLER = st.integers(0, 2**32 - 1).map(random.Random)
