"""Two edge nodes share one certificate through the replicated state: two real node services
in this test's process (state and edge parts; their stores replicate through each other's
ingest, the path gossip and anti-entropy use, pumped by the test), each running its real Caddy
in one network namespace the test created, on its own loopback address (the nodes' mesh
addresses here: network 127.0.0.0/24), ports 80 and 443. Debian's pebble (pebble_acme.py)
answers every name with the address of the edge that is NOT the issuer, so the certificate is
obtained only through that edge forwarding the ACME challenge to the issuer.

An admin gives both nodes the edge capability and adds an https route; the host's issuer
(rendezvous hashing) obtains the certificate, publishes it (`cert.set`, the key sealed to both
edges), the other loads it: a client trusting only pebble's root gets the same certificate
from both, pebble issued one, and the other edge never asked the CA. Then the issuer is seen
dead: the other takes the host over starting from the published certificate (seeded into its
Caddy storage), and still serves that one, with no second order."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import ssl
from pathlib import Path

import pytest
from pebble_acme import DIRECTORY, start_pebble
from settings_factory import make_settings
from waiting import until

from bench.support.testbed import Testbed
from formation.node.edge.cert_share import issuer_of
from formation.node.edge.component import EdgeComponent
from formation.node.edge.settings import EdgeSettings
from formation.node.net.host import NetHost, call_in_netns
from formation.node.service import NodeService
from formation.node.state.component import StateComponent
from formation.node.state.op import Op
from formation.node.state.store import StateStore

pytestmark = [pytest.mark.root, pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in (
        "ip", "nsenter", "caddy", "pebble", "pebble-challtestsrv", "openssl")),
    reason="needs root, iproute2, caddy, pebble and openssl (scripts/system-packages.sh)")]

NAME = "both.example.test"
IPS = {"a": "127.0.0.2", "b": "127.0.0.3"}


def served_der(root_pem: bytes, ip: str) -> bytes:
    """The certificate `ip`:443 serves for NAME, verified against `root_pem` only."""
    context = ssl.create_default_context(cadata=root_pem.decode())
    with socket.create_connection((ip, 443), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=NAME) as tls:
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return der


def pump(source: StateStore, target: StateStore) -> None:
    """Every op `source` applies is ingested by `target` (as gossip would deliver it)."""
    def forward(ops: list[Op], origin: str | None) -> None:
        if origin != "pump":
            asyncio.get_running_loop().create_task(
                target.ingest([op.raw for op in ops], origin="pump"))
    source.subscribe(forward)


async def test_two_edge_nodes_serve_the_certificate_one_of_them_obtained(
        short_tmp: Path) -> None:
    work = Path("/tmp") / f"fe-nodes-{os.getpid()}"
    work.mkdir()
    async with Testbed(["edge"], prefix=f"fn{secrets.token_hex(2)}-") as bed:
        netns = bed.hosts["edge"].netns
        services: dict[str, NodeService] = {}
        stores: dict[str, StateStore] = {}
        edges: dict[str, EdgeComponent] = {}
        dead: set[str] = set()  # members the nodes saw dead (VmmComponent.dead in a node)
        pebble = None
        try:
            for name in ("a", "b"):
                state = StateComponent()
                edge = EdgeComponent(NetHost(netns=netns, exec_prefix=("ip", "netns", "exec",
                                                                       netns)),
                                     settings=EdgeSettings(
                                         listen=[IPS[name]], http_port=80, https_port=443,
                                         run_dir=short_tmp / name / "edge",
                                         acme_directory=DIRECTORY,
                                         acme_ca_root=work / "ca.pem"),
                                     state=state, dead=lambda: set(dead))
                edge.cert_poll_s = 0.5
                edges[name] = edge
                services[name] = NodeService(make_settings(
                    short_tmp / name, name=f"node-{name}",
                    state={"anti_entropy_interval_s": 3600, "claim_address": False}),
                    components=[state, edge])
                await services[name].start()
                stores[name] = state.require_store()
            a, b = stores["a"], stores["b"]
            keys = {n: s.identity.public_key_hex for n, s in stores.items()}
            await a.create_network("lab", "127.0.0.0/24")
            await b.ingest([raw for _, raw in await a.log(0, 1000)])
            pump(a, b)
            pump(b, a)
            await a.append("node.admit", {"node": keys["b"], "roles": ["member"]})
            await until(lambda: b.is_member_key(keys["b"]), timeout_s=10, what="b admitted")
            await a.append("address.claim", {"ip": IPS["a"]})
            await b.append("address.claim", {"ip": IPS["b"]})
            issuer = next(n for n in keys if issuer_of(NAME, list(keys.values())) == keys[n])
            other = "b" if issuer == "a" else "a"
            pebble = await start_pebble(netns, work, http_port=80, tls_port=443,
                                        answer_ip=IPS[other])  # the CA reaches the non-issuer
            for name in keys:
                await a.append("node.capabilities", {"node": keys[name],
                                                     "capabilities": ["edge"]})
            await a.append("route.set", {"host": NAME, "protocol": "https", "port": 8000,
                                         "prefix": "web"})
            root = await pebble.issued_root()
            errors: list[str] = []

            async def both_serve() -> tuple[bytes, bytes] | None:
                try:
                    return (await asyncio.to_thread(call_in_netns, netns,
                                                    lambda: served_der(root, IPS["a"])),
                            await asyncio.to_thread(call_in_netns, netns,
                                                    lambda: served_der(root, IPS["b"])))
                except (OSError, ssl.SSLError) as exc:
                    errors.append(str(exc))
                    return None

            on_a, on_b = await until(both_serve, timeout_s=90, every_s=0.5,
                                     what="both edges serving one verified certificate",
                                     context=lambda: [*errors[-2:], (work / "pebble.log")
                                                      .read_text(errors="replace")[-800:]])
            assert on_a == on_b
            [health] = edges[other].health()
            assert "issues 0 host(s), serves 1 published by others" in health.detail
            [published] = await stores[other].view("certs")
            assert published["author"] == keys[issuer]
            assert sorted(published["keys"]) == sorted(keys.values())
            log = (work / "pebble.log").read_text(errors="replace")
            assert log.count("Issued certificate serial") == 1, log[-3000:]
            assert not list((short_tmp / other / "edge" / "caddy").glob(
                "certificates/*/*/*.crt"))  # the other edge never asked the CA

            # the issuer dies (as the other edge sees it): the other takes the host over and
            # starts from the published certificate, put in its Caddy storage
            dead.add(keys[issuer])
            await until(lambda: "issues 1 host(s)" in edges[other].health()[0].detail,
                        timeout_s=20, what="the other edge issuing the host")
            seeded = short_tmp / other / "edge" / "caddy" / "certificates" / \
                "127.0.0.1-14000-dir" / NAME / f"{NAME}.crt"
            assert seeded.is_file()
            after = await asyncio.to_thread(call_in_netns, netns,
                                            lambda: served_der(root, IPS[other]))
            assert after == on_a  # the same certificate, now managed by its new issuer
            log = (work / "pebble.log").read_text(errors="replace")
            assert log.count("Issued certificate serial") == 1, log[-3000:]
        finally:
            for service in services.values():
                await service.stop()
            if pebble is not None:
                await pebble.stop()
            shutil.rmtree(work, ignore_errors=True)
