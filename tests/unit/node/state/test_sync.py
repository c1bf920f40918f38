"""Anti-entropy between two real node services over signed TCP: exactly the missing ops are
sent, and forks the version vector cannot describe are found by walking back."""

from __future__ import annotations

from pathlib import Path

import pytest
from nodepair import two_nodes
from settings_factory import make_settings
from statekit import NETWORK, craft, replica, write
from waiting import until

from formation.api import state_routes
from formation.api.client import NodeClient
from formation.identity import NodeIdentity
from formation.node.service import NodeService
from formation.node.state.op import decode
from formation.node.state.sync import AntiEntropy, Peer

ADMIN = NodeIdentity.from_seed(b"\x01" * 32)
WRITER = NodeIdentity.from_seed(b"\x02" * 32)


@pytest.fixture
async def pair(short_tmp: Path):
    async with two_nodes(short_tmp) as (a, b):
        a.key_authorities.append(lambda key: key == b.identity.public_key_hex)
        yield a, b


def pair_base(service) -> Path:
    return service.settings.data_dir

def _store(service):
    return service.parts.state.require_store()


async def _history(a, base: Path, extra: int) -> list[bytes]:
    """Genesis by ADMIN, WRITER admitted, then `extra` ops by WRITER, all ingested on `a`."""
    source = replica(base, "source")
    source.create_network(ADMIN.sign, ADMIN.public_key, NETWORK, "lab", "10.1.0.0/24")
    write(source, ADMIN, "node.admit", {"node": WRITER.public_key_hex, "roles": ["member"]})
    for i in range(extra):
        write(source, WRITER, "node.record", {"name": f"w{i}"})
    raws = [raw for _, raw in source.log_page(0, 10**6)]
    source.close()
    await _store(a).ingest(raws)
    return raws


def _puller(a, b) -> tuple[AntiEntropy, Peer]:
    peer = Peer(address=a.listen_addresses()[1].removeprefix("tcp:"))
    return AntiEntropy(_store(b), [peer], b.identity, 3600), peer


async def test_catch_up_receives_exactly_what_is_missing(pair) -> None:
    a, b = pair
    raws = await _history(a, pair_base(a), 3000)
    await _store(b).ingest(raws[:1200])
    puller, peer = _puller(a, b)
    received = await puller.pull(peer)
    assert received == len(raws) - 1200
    assert peer.ops_received == len(raws) - 1200  # nothing it had was sent
    assert peer.bytes_received < 1.1 * sum(len(r) for r in raws[1200:])
    assert await _store(b).heads() == await _store(a).heads()
    assert await puller.pull(peer) == 0  # in sync: heads compared, nothing sent
    await peer.client.close()


async def test_fork_found_by_walking_back(pair) -> None:
    a, b = pair
    raws = await _history(a, pair_base(a), 5)
    replica = _store(a).replica
    left = craft(WRITER, replica, "node.record", {"name": "left"})
    right = craft(WRITER, replica, "node.record", {"name": "right"})  # same seq: a fork
    await _store(b).ingest([*raws, left])
    await _store(a).ingest([left, right])
    on_right = craft(ADMIN, replica, "node.record", {"name": "admin"})
    await _store(a).ingest([on_right])
    puller, peer = _puller(a, b)
    await puller.pull(peer)
    assert await _store(b).heads() == await _store(a).heads()
    assert decode(right).id in {decode(r).id for _, r in _store(b).replica.log_page(0, 10**6)}
    status = await _store(b).status()
    assert len(status["equivocations"]) == 1
    await peer.client.close()


async def test_new_ops_are_pushed_at_once(short_tmp: Path) -> None:
    """Anti-entropy is effectively off (one pull at start, then hourly): what arrives, arrives
    by push, in both directions."""
    import socket

    from formation.identity import load_or_create_identity

    ports, ids = [], []
    for name in ("a", "b"):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
        ids.append(load_or_create_identity(short_tmp / name / "data"))
    services = []
    for i, name in enumerate(("a", "b")):
        other = 1 - i
        settings = make_settings(
            short_tmp / name, name=f"node-{name}",
            api={"listen": f"127.0.0.1:{ports[i]}"},
            state={"anti_entropy_interval_s": 3600, "claim_address": False,
                   "peers": [f"{ids[other].public_key_hex}@127.0.0.1:{ports[other]}"]})
        services.append(NodeService(settings))
    for service in services:
        await service.start()
    a, b = (_store(s) for s in services)

    async def arrives(store, op_id: bytes) -> None:
        await until(lambda: store.has(op_id), 5, 0.05, what=f"op {op_id.hex()[:12]} pushed")

    async def pulled_once() -> bool:
        """Each node's start-up pull is over (it found nothing, or its peer was not up yet):
        the next anti-entropy round is an hour away, so what arrives from here was pushed."""
        for service in services:
            async with NodeClient.unix(service.settings.api.socket) as client:
                peers = (await client.call(state_routes.state_status)).peers
            if not all(peer.ok is not None for peer in peers):
                return False
        return True

    try:
        await until(pulled_once, 10, 0.05)
        genesis = await a.create_network("lab", "10.5.0.0/24")
        admit = await a.append("node.admit", {"node": ids[1].public_key_hex,
                                              "roles": ["member"]})
        await arrives(b, genesis.id)
        await arrives(b, admit.id)
        record = await b.append("node.record", {"name": "bee"})
        await arrives(a, record.id)
        assert await a.heads() == await b.heads()
    finally:
        for service in services:
            await service.stop()
