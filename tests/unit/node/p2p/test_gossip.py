"""Gossip with real keys and real envelopes: verification, dedupe, relay and the bounds."""

from __future__ import annotations

import pytest

from formation.api.p2p_models import Envelope
from formation.config.settings import GossipSettings
from formation.identity import NodeIdentity
from formation.node.p2p.envelope import Rejected, TooLarge, make_envelope, verify_envelope
from formation.node.p2p.gossip import ALL, Gossip, InboxFull, PeerTarget
from formation.node.p2p.seen import SeenIds
from formation.node.p2p.sender import PeerSender

ME, ALICE, BOB = NodeIdentity.generate(), NodeIdentity.generate(), NodeIdentity.generate()
KNOWN = {ALICE.public_key_hex, BOB.public_key_hex, ME.public_key_hex}
# Nothing listens on these loopback ports: relayed envelopes just wait in their lanes.
PEERS = [PeerTarget(f"p{i}", f"127.0.0.1:{9 + i}") for i in range(5)]


def _gossip(peers=PEERS, **settings) -> Gossip:
    return Gossip(ME, GossipSettings(**settings), KNOWN.__contains__, lambda: list(peers))


def _queued(gossip: Gossip) -> dict[str, list[Envelope]]:
    return {node_id: list(s._queue) for node_id, s in gossip._senders.items()}


async def test_an_envelope_is_delivered_once_and_relayed_with_one_hop_less():
    gossip = _gossip(fanout=2)
    got: list[Envelope] = []
    gossip.subscribe("state", got.append)
    envelope = make_envelope(ALICE, "state", {"op": 1}, hops=3)
    try:
        assert await gossip.handle(envelope, sender_id="p0") is True
        assert await gossip.handle(envelope, sender_id="p1") is False
        assert [e.id for e in got] == [envelope.id]
        assert (gossip.delivered, gossip.duplicates) == (1, 1)
        lanes = _queued(gossip)
        assert len(lanes) == 2 and "p0" not in lanes  # never back to whom it came from
        assert all(q[0].hops == 2 and q[0].id == envelope.id for q in lanes.values())
    finally:
        await gossip.stop()


async def test_no_relay_when_hops_are_spent_and_async_subscribers_run():
    gossip = _gossip()
    got = []

    async def subscriber(envelope: Envelope) -> None:
        got.append(envelope.payload)

    unsubscribe = gossip.subscribe("heartbeat", subscriber)
    await gossip.handle(make_envelope(BOB, "heartbeat", {"n": 1}, hops=0), None)
    unsubscribe()
    await gossip.handle(make_envelope(BOB, "heartbeat", {"n": 2}, hops=0), None)
    assert got == [{"n": 1}] and gossip._senders == {}


@pytest.mark.parametrize("tamper, reason", [
    (lambda e: e.model_copy(update={"payload": {"op": 2}}), "id does not match"),
    (lambda e: e.model_copy(update={"signature": "00" * 64}), "bad signature"),
    (lambda e: e.model_copy(update={"created": e.created - 60}), "stale"),
])
def test_tampered_or_stale_envelopes_are_rejected(tamper, reason):
    envelope = make_envelope(ALICE, "state", {"op": 1}, hops=1)
    verify_envelope(envelope, KNOWN.__contains__, max_age_s=30)
    with pytest.raises(Rejected, match=reason):
        verify_envelope(tamper(envelope), KNOWN.__contains__, max_age_s=30)


async def test_unknown_authors_are_rejected_and_not_relayed():
    gossip = _gossip()
    stranger = make_envelope(NodeIdentity.generate(), "state", {"x": 1}, hops=3)
    assert await gossip.handle(stranger, None) is False
    assert (gossip.rejected, gossip.delivered, gossip._senders) == (1, 0, {})
    assert stranger.id not in gossip.seen  # a forgery must not block the real message


async def test_a_small_network_gets_a_direct_push_without_relays():
    gossip = _gossip(direct_max=5)
    try:
        envelope, targets = await gossip.publish("state", {"a": 1})
        assert (targets, envelope.hops) == (5, 0)
    finally:
        await gossip.stop()


async def test_publish_goes_to_fanout_peers_or_all_and_is_not_redelivered_here():
    gossip = _gossip(fanout=3, direct_max=4)
    try:
        envelope, targets = await gossip.publish("state", {"a": 1})
        assert targets == 3 and envelope.hops == gossip.settings.max_hops
        _, everyone = await gossip.publish("heartbeat", {}, fanout=ALL, hops=0)
        assert everyone == len(PEERS)
        assert await gossip.handle(envelope, "p1") is False  # our own, coming back
    finally:
        await gossip.stop()


async def test_the_living_are_chosen_before_the_dead():
    peers = [PeerTarget("dead1", "127.0.0.1:9", alive=False),
             PeerTarget("live1", "127.0.0.1:10"), PeerTarget("live2", "127.0.0.1:11")]
    gossip = _gossip(peers=peers, fanout=2, direct_max=1)
    try:
        for _ in range(10):
            await gossip.publish("state", {})
        assert set(gossip._senders) == {"live1", "live2"}
    finally:
        await gossip.stop()


async def test_the_inbox_refuses_a_batch_that_does_not_fit():
    gossip = _gossip(inbox=8)
    batch = [make_envelope(ALICE, "state", {"i": i}, hops=0) for i in range(6)]
    ack = gossip.accept_batch(batch, "p0")
    assert (ack.queued, ack.duplicates) == (6, 0)
    with pytest.raises(InboxFull):
        gossip.accept_batch([make_envelope(ALICE, "state", {"i": i}, hops=0)
                             for i in range(6, 9)], "p0")
    assert gossip.busy_refusals == 1 and gossip.status().inbox == 6


async def test_a_peer_lane_drops_its_oldest_when_full():
    sender = PeerSender("p", "127.0.0.1:9", ME, capacity=8, batch=4, timeout_s=1,
                        max_age_s=30)
    envelopes = [make_envelope(ME, "state", {"i": i}, hops=0) for i in range(20)]
    for envelope in envelopes:
        sender.offer(envelope)
    assert sender.queued == 8 and sender.dropped == 12
    assert [e.payload["i"] for e in sender._queue] == list(range(12, 20))
    await sender.close()


def test_seen_ids_are_bounded_by_count_and_age():
    seen = SeenIds(window_s=10, max_entries=3)
    for i in range(5):
        assert seen.add(f"id{i}", now=0.0)
    assert len(seen) == 3 and "id0" not in seen and "id4" in seen
    assert not seen.add("id4", now=1.0)
    seen.add("late", now=20.0)
    assert list(seen._seen) == ["late"]


async def test_batches_stay_under_the_request_body_limit_and_huge_payloads_are_refused():
    sender = PeerSender("p", "127.0.0.1:9", ME, capacity=64, batch=64, timeout_s=1,
                        max_age_s=30)
    for i in range(4):
        sender.offer(make_envelope(ME, "state", {"i": i, "blob": "x" * 400_000}, hops=0))
    first = sender._take_batch()
    assert [e.payload["i"] for e in first] == [0, 1]  # a third would pass 900 KiB
    await sender.close()
    with pytest.raises(TooLarge, match="at most"):
        make_envelope(ME, "state", {"blob": "x" * 800_000}, hops=0)
