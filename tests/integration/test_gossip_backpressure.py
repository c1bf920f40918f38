"""Back-pressure over real HTTP: a node whose gossip inbox cannot take a batch answers 503, and
the sender keeps the batch (nothing dropped) and backs off. Loopback only, no root."""

from __future__ import annotations

from settings_factory import make_settings
from waiting import until

from formation.api import p2p_routes
from formation.api.client import ApiError, NodeClient
from formation.api.p2p_models import GossipBatch
from formation.identity import NodeIdentity
from formation.node.p2p.envelope import make_envelope
from formation.node.p2p.sender import PeerSender
from formation.node.service import NodeService

PEER = NodeIdentity.generate()


async def test_a_full_inbox_refuses_and_the_sender_keeps_its_batch(short_tmp):
    settings = make_settings(short_tmp, trusted_keys=[PEER.public_key_hex], gossip={"inbox": 8})
    service = NodeService(settings)
    await service.start()
    try:
        address = service.listen_addresses()[1].removeprefix("tcp:")
        too_many = [make_envelope(PEER, "state", {"i": i}, hops=0) for i in range(12)]
        async with NodeClient.tcp(address, PEER) as client:
            try:
                await client.call(p2p_routes.gossip_push, GossipBatch(envelopes=too_many))
                raise AssertionError("a batch larger than the inbox was accepted")
            except ApiError as exc:
                assert exc.status == 503

        node = service.identity.node_id  # the sender checks it reaches the node it names
        sender = PeerSender(node, address, PEER, capacity=64, batch=12, timeout_s=2,
                            max_age_s=30)
        for envelope in too_many:
            sender.offer(envelope)
        sender.start()
        await until(lambda: sender.failures >= 2, every_s=0.05, what="two refused sends")
        assert (sender.queued, sender.dropped, sender.sent) == (12, 0, 0)
        assert sender.backoff_s > 0
        await sender.close()

        got = []
        gossip = service.parts.p2p.gossip
        assert gossip is not None
        gossip.subscribe("state", got.append)
        small = PeerSender(node, address, PEER, capacity=64, batch=4, timeout_s=2, max_age_s=30)
        for envelope in too_many:
            small.offer(envelope)
        small.start()
        # the receiver publishes a batch before it answers, and the sender counts it sent on the
        # answer: wait for both, or the last batch may be seen delivered but not yet counted
        await until(lambda: len(got) >= 12 and small.sent >= 12, every_s=0.05,
                    what="all 12 envelopes delivered and counted sent")
        assert small.sent == 12 and sorted(e.payload["i"] for e in got) == list(range(12))
        assert gossip.busy_refusals >= 3
        await small.close()
    finally:
        await service.stop()
