"""Three real `formation node` processes on loopback (founder F, admin A, member M): after F
removes A, A signs `node.admit` of a new admin B with parents and HLC from before its removal,
B removes the founder, and M relays both. The backdated admission and everything B signed are
void on every node, also on A's own once it restarts and syncs; F stays the only admin and keeps
writing. A far-future op pushed to M is held back, shown in `state status`, and does not stop M
from writing."""

from __future__ import annotations

import time

import pytest
from statecluster import NodeProc, call, cleanup, converged

from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.identity import NodeIdentity
from formation.node.state import wire
from formation.node.state.op import build_body, decode, sign_body

B = NodeIdentity.from_seed(b"\x42" * 32)


@pytest.fixture
def cluster(short_tmp):
    made = [NodeProc(short_tmp, name) for name in ("f", "a", "m")]
    for n in made:
        n.peers = [o.peer_spec for o in made if o is not n]
        n.start()
    yield made
    cleanup(made)


async def _append(node: NodeProc, kind: str, payload: dict) -> sm.StateOp:
    return await call(node, sr.state_append, sm.AppendRequest(kind=kind, payload=payload))


async def _log(node: NodeProc) -> list[sm.StateOp]:
    ops, after = [], 0
    while True:
        page = await call(node, sr.state_log, query=sm.LogQuery(after=after, limit=1000))
        ops += page.ops
        if page.next_after is None:
            return ops
        after = page.next_after


async def _push(node: NodeProc, raws: list[bytes]) -> sm.PushResult:
    return await call(node, sr.state_sync_push, sm.OpBatch(ops=wire.pack(raws), count=len(raws)))


async def _outcome(node: NodeProc) -> tuple:
    network = (await call(node, sr.state_view, collection="network")).items[0]
    nodes = {n["key"] for n in (await call(node, sr.state_view, collection="nodes")).items}
    dns = (await call(node, sr.state_view, collection="dns")).items
    return network["admins"], nodes, dns


async def test_backdated_admit_after_removal_is_void_on_every_node(cluster) -> None:
    f, a, m = cluster
    await call(f, sr.state_create_network, sm.CreateNetworkRequest(name="lab", cidr="10.9.0.0/24"))
    key_f, key_a, key_m = (n.identity.public_key_hex for n in cluster)
    await _append(f, "node.admit", {"node": key_a, "roles": ["admin"]})
    await _append(f, "node.admit", {"node": key_m, "roles": ["member"]})
    await converged(cluster)
    a.stop()
    before = await _log(f)
    heads = (await call(f, sr.state_heads)).heads
    mine = [op for op in before if op.author == key_a]
    await _append(f, "node.remove", {"node": key_a})

    # A, removed, signs an admission "from before" its removal; B removes the founder
    ident = a.identity
    by_id = {op.id: op for op in before}
    top = max(tuple(by_id[h].hlc) for h in heads)
    prev = max(mine, key=lambda op: op.seq) if mine else None
    network = bytes.fromhex((await call(f, sr.state_status)).network)
    admit = sign_body(build_body(
        network, ident.public_key, (prev.seq + 1) if prev else 1,
        bytes.fromhex(prev.id) if prev else None,
        [bytes.fromhex(h) for h in heads], (top[0], top[1] + 1), "node.admit",
        {"node": B.public_key_hex, "roles": ["admin"]}), ident.sign)
    admit_op = decode(admit)
    remove_f = sign_body(build_body(
        admit_op.network, B.public_key, 1, None, [admit_op.id],
        (admit_op.hlc[0], admit_op.hlc[1] + 1), "node.remove", {"node": key_f}), B.sign)
    dns = sign_body(build_body(
        admit_op.network, B.public_key, 2, decode(remove_f).id, [decode(remove_f).id],
        (admit_op.hlc[0], admit_op.hlc[1] + 2), "dns.set",
        {"name": "evil.fog", "type": "A", "value": "10.9.0.66"}), B.sign)
    pushed = await _push(m, [admit, remove_f, dns])  # M relays: valid in their causal past
    assert pushed.accepted == 3

    await converged([f, m])
    for node in (f, m):
        admins, nodes, dns_items = await _outcome(node)
        assert admins == [key_f]
        assert B.public_key_hex not in nodes and key_a not in nodes
        assert dns_items == []
        assert node.cli_json("state", "rebuild")["equal"] is True
    await _append(f, "dns.set", {"name": "ok.fog", "type": "A", "value": "10.9.0.1"})

    a.start()  # A's own node syncs and reaches the same verdicts
    await converged(cluster)
    outcomes = [await _outcome(n) for n in cluster]
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert outcomes[0][0] == [key_f] and [d["key"] for d in outcomes[0][2]] == ["ok.fog"]


async def test_far_future_op_is_held_and_the_node_keeps_writing(cluster) -> None:
    f, _a, m = cluster
    await call(f, sr.state_create_network, sm.CreateNetworkRequest(name="lab", cidr="10.9.0.0/24"))
    await _append(f, "node.admit", {"node": m.identity.public_key_hex, "roles": ["member"]})
    await converged([f, m])
    heads = (await call(m, sr.state_heads)).heads
    log = await _log(f)
    last = max((op for op in log if op.author == f.identity.public_key_hex),
               key=lambda op: op.seq)
    ten_years = int(time.time() * 1000) + 10 * 365 * 24 * 3600 * 1000
    network = bytes.fromhex((await call(f, sr.state_status)).network)
    future = sign_body(build_body(
        network, f.identity.public_key, last.seq + 1,
        bytes.fromhex(last.id),
        [bytes.fromhex(h) for h in heads], (ten_years, 0), "node.record", {"name": "future"}),
        f.identity.sign)
    pushed = await _push(m, [future])
    assert pushed.buffered == 1 and pushed.accepted == 0
    status = m.cli_json("state", "status")
    assert status["held_future"] == 1
    assert "held (future)  1" in m.cli("state", "status").stdout
    await _append(m, "node.record", {"name": "m"})
    await _append(f, "node.record", {"name": "f"})
    await converged([f, m])
