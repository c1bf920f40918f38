"""The mesh on real wireguard-go in network namespaces (each simulated host has its own mount
namespace for /run/wireguard), configured by the node's own backend and reconciler."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from mesh_support import (
    UnderlayCapture,
    echo_server,
    handshaken,
    identities,
    requires_mesh_tools,
    tcp_roundtrip,
)
from waiting import wait_for

from bench.support.testbed import Testbed
from formation.node.net.reconcile import DesiredPeer, MeshReconciler
from formation.node.net.wggo import WireGuardGoBackend

pytestmark = [requires_mesh_tools, __import__("pytest").mark.root]

PORT = 51820
NAMES = ["a", "b", "c"]


def mesh_ip(name: str) -> str:
    return f"10.88.0.{NAMES.index(name) + 1}"


def desired(bed: Testbed, ids, names: list[str]) -> list[DesiredPeer]:
    return [DesiredPeer(n, ids[n].wireguard_public_key, (f"{bed.hosts[n].underlay_ip}:{PORT}",),
                        (f"{mesh_ip(n)}/32",)) for n in names]


async def test_three_hosts_mesh(tmp_path: Path) -> None:
    ids = identities(NAMES)
    async with Testbed(NAMES) as bed:
        backends: dict[str, WireGuardGoBackend] = {}
        recs: dict[str, MeshReconciler] = {}
        try:
            for n in NAMES:
                backend = WireGuardGoBackend("formnet0", bed.hosts[n].net)
                await backend.create(ids[n].wireguard_private_key, PORT)
                backends[n] = backend
                await backend.add_address(f"{mesh_ip(n)}/24")
            recs = {n: MeshReconciler(backends[n], persistent_keepalive=25) for n in NAMES}
            for n in NAMES:
                result = await recs[n].reconcile(desired(bed, ids, NAMES))
                assert [c.action for c in result.applied] == ["add", "add"]  # not itself
                assert not result.failed

            # every pair has a handshake; applying the same set again changes nothing
            for n in NAMES:
                others = [ids[o].wireguard_public_key for o in NAMES if o != n]
                await wait_for(lambda n=n, others=others: _handshaken(backends[n], others), 15,
                               f"handshakes on {n}")
            for n in NAMES:  # once held keepalives are released (reconcile.py), all is applied
                await wait_for(lambda n=n: _settled(recs[n]), 5, f"follow-up pass on {n}")
                assert (await recs[n].reconcile(desired(bed, ids, NAMES))).applied == []
                status = await backends[n].status()
                assert {p.persistent_keepalive for p in status.peers} == {25}

            # `wg show` (wireguard-tools) reads the same device the node configured
            dump = await bed.hosts["a"].run("wg", "show", "formnet0", "peers")
            assert set(dump.split()) == {ids["b"].wireguard_public_key,
                                         ids["c"].wireguard_public_key}

            # TCP passes over mesh addresses; the marker never shows on the underlay in clear
            servers = [await echo_server(bed.hosts[n].net, mesh_ip(n), 7000) for n in NAMES]
            servers.append(await echo_server(bed.hosts["c"].net, bed.hosts["c"].underlay_ip,
                                             7001))
            marker = b"formation-marker-" + os.urandom(6).hex().encode()
            control = b"formation-clear-" + os.urandom(6).hex().encode()
            async with UnderlayCapture(bed, tmp_path / "underlay.pcap") as capture:
                for src, dst in (("a", "b"), ("b", "c"), ("c", "a")):
                    got = await tcp_roundtrip(bed.hosts[src].net, mesh_ip(dst), 7000, marker)
                    assert got == marker
                # control: the same capture does see what is sent in clear on the underlay
                got = await tcp_roundtrip(bed.hosts["a"].net, bed.hosts["c"].underlay_ip, 7001,
                                          control)
                assert got == control
                # sent last: once it is in the file, so is everything sent before it
                await capture.wait_for_bytes(control)
            assert capture.dropped == 0, f"the capture lost packets: {capture.stats}"
            assert marker not in capture.data()

            # removing c from a leaves a's session with b intact
            before = (await backends["a"].status()).peer(ids["b"].wireguard_public_key)
            result = await recs["a"].reconcile(desired(bed, ids, ["a", "b"]))
            assert [(c.action, c.public_key) for c in result.applied] == [
                ("remove", ids["c"].wireguard_public_key)]
            after_status = await backends["a"].status()
            assert after_status.peer(ids["c"].wireguard_public_key) is None
            after = after_status.peer(ids["b"].wireguard_public_key)
            assert after is not None and before is not None
            assert after.latest_handshake == before.latest_handshake
            assert after.rx_bytes >= before.rx_bytes and after.tx_bytes >= before.tx_bytes
            assert await tcp_roundtrip(bed.hosts["a"].net, mesh_ip("b"), 7000, b"still") \
                == b"still"

            # b's underlay address changes: a re-points b, and only b
            c_on_b = (await backends["b"].status()).peer(ids["c"].wireguard_public_key)
            await bed.set_underlay_ip("b", "198.18.0.22")
            result = await recs["a"].reconcile(desired(bed, ids, ["a", "b"]))
            assert [(c.action, c.public_key) for c in result.applied] == [
                ("update", ids["b"].wireguard_public_key)]
            assert "endpoint" in result.applied[0].reason
            peer_b = (await backends["a"].status()).peer(ids["b"].wireguard_public_key)
            assert peer_b is not None and peer_b.endpoint == f"198.18.0.22:{PORT}"
            assert await tcp_roundtrip(bed.hosts["a"].net, mesh_ip("b"), 7000, b"moved") \
                == b"moved"
            c_on_b_after = (await backends["b"].status()).peer(ids["c"].wireguard_public_key)
            assert c_on_b_after is not None and c_on_b is not None
            assert c_on_b_after.latest_handshake == c_on_b.latest_handshake

            result = await recs["c"].reconcile(desired(bed, ids, NAMES))
            assert [c.action for c in result.applied] == ["update"]

            # wireguard-go dies: the backend restarts it with the same peers and addresses, and
            # the new device (keepalive on) handshakes again by itself
            pid = backends["c"].pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            await wait_for(lambda: _restarted(backends["c"]), 15, "wireguard-go restarted")
            peers = {p.public_key for p in (await backends["c"].status()).peers}
            assert peers == {ids["a"].wireguard_public_key, ids["b"].wireguard_public_key}
            got = await tcp_roundtrip(bed.hosts["b"].net, mesh_ip("c"), 7000, b"again")
            assert got == b"again"
            for server in servers:
                server.close()
        finally:
            for rec in recs.values():
                rec.close()
            for backend in backends.values():
                await backend.delete()
    for n in NAMES:
        assert not Path(f"/run/netns/{bed.prefix}{n}").exists()


async def _handshaken(backend: WireGuardGoBackend, keys: list[str]) -> bool:
    return handshaken(await backend.status(), keys)


async def _settled(rec: MeshReconciler) -> bool:
    return not rec.pending


async def _restarted(backend: WireGuardGoBackend) -> bool:
    return backend.restarts == 1 and backend.pid is not None
