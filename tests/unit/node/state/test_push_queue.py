"""What waits to be pushed to a peer is bounded in bytes, not only in ops: a member's large
ops (16 KiB each) offered while a peer is away cannot pile up without bound (on main, 50,000
of them per peer: 800 MB); the rest is left to anti-entropy. Real node over signed TCP."""

from __future__ import annotations

import asyncio

from waiting import until

from formation.identity import NodeIdentity
from formation.node.state import op as opm
from formation.node.state.sync import PUSH_QUEUE_MAX_BYTES, DirectPush, Peer

AUTHOR = NodeIdentity.from_seed(b"\x41" * 32)


def _large_ops(count: int) -> list[opm.Op]:
    payload = {f"k{i}": "x" * 2000 for i in range(6)}
    return [opm.decode(opm.sign_body(opm.build_body(
        bytes(16), AUTHOR.public_key, i + 1, None if i == 0 else bytes(32), [bytes(32)],
        (10, i), "node.record", payload), AUTHOR.sign)) for i in range(count)]


async def test_queue_for_an_absent_peer_is_bounded_in_bytes_and_drains(node) -> None:
    pusher = NodeIdentity.generate()
    node.key_authorities.append(lambda key: key == pusher.public_key_hex)
    peer = Peer(address=node.listen_addresses()[1].removeprefix("tcp:"))
    push = DirectPush([peer], pusher)
    ops = _large_ops(1400)  # about 17 MB of envelopes
    push.offer(ops, origin=None)
    assert 0 < push.queued_bytes[peer.address] <= PUSH_QUEUE_MAX_BYTES
    assert push.skipped > 0
    sender = asyncio.ensure_future(push.run(peer))
    try:
        async def drained() -> bool:
            return push.queued_bytes[peer.address] == 0

        await until(drained, timeout_s=60)
        push.offer(ops[-5:], origin=None)  # room again: what was skipped may be queued now
        assert push.queued_bytes[peer.address] > 0
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        if peer.client is not None:
            await peer.client.close()
