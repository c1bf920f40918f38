"""Two edges share one certificate, from Debian's pebble started by the test (pebble_acme.py),
all in one network namespace the test created (edge_lab.py: nothing leaves it):
- edge A is the host's issuer (TlsShare.issue): its Caddy asks the CA, over HTTP-01 only;
- edge B is not: it never asks the CA and forwards `/.well-known/acme-challenge/` for the host
  to A. Pebble validates on B's HTTP port (80), so the certificate is obtained only if the
  forwarding works;
- A's certificate is read from A's storage (cert_storage.py), given to B as a published one
  (LoadedCert, load_pem), and a client trusting only pebble's root verifies the same
  certificate on both edges. Pebble issued exactly one certificate."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
from pathlib import Path

import pytest
from edge_lab import edge_lab
from pebble_acme import DIRECTORY, start_pebble
from waiting import until

from formation.node.edge.cert_share import LoadedCert, TlsShare
from formation.node.edge.cert_storage import issued
from formation.node.edge.engine import CaddyEngine
from formation.node.edge.routes import Route
from formation.node.net.host import NetHost, call_in_netns

pytestmark = [pytest.mark.root, pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in (
        "ip", "nsenter", "caddy", "pebble", "pebble-challtestsrv", "openssl")),
    reason="needs root, iproute2, caddy, pebble and openssl (scripts/system-packages.sh)")]

NAME = "shared.example.test"
A_HTTP, A_HTTPS = 8080, 8443  # the issuer (edge_lab's engine)
B_HTTP, B_HTTPS = 80, 443  # the other edge, where pebble validates


def served_cert(root_pem: bytes, port: int) -> tuple[bytes, str]:
    """(the certificate's DER, the body) from 127.0.0.1:`port`, verified against `root_pem`."""
    context = ssl.create_default_context(cadata=root_pem.decode())
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=NAME) as tls:
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {NAME}\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := tls.recv(65536):
            reply += chunk
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return der, reply.decode(errors="replace").split("\r\n\r\n", 1)[-1]


async def test_two_edges_serve_one_certificate_the_ca_issued_once() -> None:
    work = Path("/tmp") / f"fe-shared-{os.getpid()}"
    async with edge_lab(http_port=A_HTTP, https_port=A_HTTPS, acme_directory=DIRECTORY,
                        acme_email="ops@example.test",
                        acme_ca_root=str(work / "ca.pem")) as lab:
        pebble = await start_pebble(lab.edge_netns, work, http_port=B_HTTP, tls_port=B_HTTPS)
        edge = lab.bed.hosts["edge"]
        b = CaddyEngine(lab.engine.settings.model_copy(update={
            "http_port": B_HTTP, "https_port": B_HTTPS}), lab.work / "edge-b",
            NetHost(netns=edge.netns, exec_prefix=("ip", "netns", "exec", edge.netns)))
        try:
            await lab.start_backend("b1")
            route = Route(NAME, "https", None, (lab.backend("b1"),), "shared")
            b.share = TlsShare(forward=((NAME, f"127.0.0.1:{A_HTTP}"),))
            await b.start([route])
            lab.engine.share = TlsShare(issue=frozenset({NAME}))
            await lab.engine.start([route])
            storage = lab.engine.paths.storage
            errors: list[str] = []

            async def obtained() -> object:
                return await asyncio.to_thread(issued, storage, NAME)

            cert = await until(obtained, timeout_s=90, every_s=0.5,
                               what="A's certificate from pebble, validated through B",
                               context=lambda: (work / "pebble.log").read_text(
                                   errors="replace")[-1500:])
            assert isinstance(cert.key_pem, str) and "PRIVATE KEY" in cert.key_pem
            await b.set_share(TlsShare(forward=((NAME, f"127.0.0.1:{A_HTTP}"),), load=(
                LoadedCert(NAME, cert.cert_pem, cert.key_pem, cert.not_after),)))
            root = await pebble.issued_root()

            async def both_serve() -> tuple[tuple[bytes, str], tuple[bytes, str]] | None:
                try:
                    return (await asyncio.to_thread(call_in_netns, lab.edge_netns,
                                                    lambda: served_cert(root, A_HTTPS)),
                            await asyncio.to_thread(call_in_netns, lab.edge_netns,
                                                    lambda: served_cert(root, B_HTTPS)))
                except (OSError, ssl.SSLError) as exc:
                    errors.append(str(exc))
                    return None

            on_a, on_b = await until(both_serve, timeout_s=30, every_s=0.5,
                                     what="both edges serving the certificate, verified",
                                     context=lambda: errors[-3:])
            assert on_a[0] == on_b[0]  # the very same certificate
            assert on_a[1] == on_b[1] == "b1"
            log = (work / "pebble.log").read_text(errors="replace")
            assert log.count("Issued certificate serial") == 1, log[-3000:]
            # B never asked the CA: no certificate, no ACME account in its storage
            assert not list((b.paths.storage).glob("certificates/*/*/*.crt"))
            assert not list((b.paths.storage).glob("acme/*/users/*"))
        finally:
            await b.stop()
            await pebble.stop()
            shutil.rmtree(work, ignore_errors=True)
