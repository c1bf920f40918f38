"""A node listed with several endpoints, the first unreachable: the reconciler moves on to the
next one when no handshake comes. Real wireguard-go in namespaces."""

from __future__ import annotations

import pytest
from mesh_support import identities, requires_mesh_tools
from waiting import until

from bench.support.testbed import Testbed
from formation.node.net.peers import PeerConfig
from formation.node.net.reconcile import DesiredPeer, MeshReconciler
from formation.node.net.wggo import WireGuardGoBackend

pytestmark = [requires_mesh_tools, pytest.mark.root]


async def test_unanswered_endpoint_falls_back_to_the_next() -> None:
    ids = identities(["a", "b"])
    async with Testbed(["a", "b"]) as bed:
        a = WireGuardGoBackend("formnet0", bed.hosts["a"].net)
        b = WireGuardGoBackend("formnet0", bed.hosts["b"].net)
        rec = MeshReconciler(a)
        rec.ENDPOINT_TRY_S = 2.0  # the node uses 6 s; shorter keeps the test short
        try:
            await a.create(ids["a"].wireguard_private_key, 51820)
            await b.create(ids["b"].wireguard_private_key, 51820)
            # b knows a's key but no endpoint for it: only a can start the handshake
            await b.set_peer(PeerConfig(ids["a"].wireguard_public_key, None, ("10.88.0.1/32",)))
            real = f"{bed.hosts['b'].underlay_ip}:51820"
            peer = DesiredPeer("nb", ids["b"].wireguard_public_key,
                               ("198.18.0.99:51820", real), ("10.88.0.2/32",))
            moves = []

            async def handshaken():
                """One reconcile pass (it moves to the next endpoint when one gets no
                handshake); the peer's status once it has a handshake."""
                result = await rec.reconcile([peer])
                moves.extend(c.reason for c in result.applied if "endpoint" in c.reason)
                status = (await a.status()).peer(peer.public_key)
                assert status is not None
                return status if status.latest_handshake > 0 else None

            status = await until(handshaken, 20, 0.5, what="a handshake",
                                 context=lambda: f"moves: {moves}")
            assert status.endpoint == real
            assert f"endpoint 198.18.0.99:51820 -> {real}" in moves
        finally:
            rec.close()
            await a.delete()
            await b.delete()
