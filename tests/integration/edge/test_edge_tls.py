"""HTTPS by the engine's own ACME client against Debian's pebble started by the test (in the
edge's namespace, pebble_acme.py): the edge obtains a certificate for an https route's host over
HTTP-01/TLS-ALPN-01 on its real ports 80 and 443, serves it, and a client that trusts only
pebble's root verifies it and gets the backend's answer; plain HTTP is redirected to HTTPS."""

from __future__ import annotations

import asyncio
import http.client
import os
import shutil
import socket
import ssl
from pathlib import Path

import pytest
from edge_lab import edge_lab
from pebble_acme import DIRECTORY, start_pebble
from waiting import until

from formation.node.edge.routes import Route
from formation.node.net.host import call_in_netns

pytestmark = [pytest.mark.root, pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(t) for t in (
        "ip", "nsenter", "caddy", "pebble", "pebble-challtestsrv", "openssl")),
    reason="needs root, iproute2, caddy, pebble and openssl (scripts/system-packages.sh)")]

NAME = "secure.example.test"


def https_get(root_pem: bytes, server_name: str) -> tuple[str, str]:
    """(the certificate's subject alt name, the body) over a connection that verifies the
    edge's certificate against `root_pem` only; raises ssl.SSLError / OSError otherwise."""
    context = ssl.create_default_context(cadata=root_pem.decode())
    connection = http.client.HTTPSConnection("127.0.0.1", 443, timeout=5, context=context)
    try:
        connection.sock = context.wrap_socket(
            socket.create_connection(("127.0.0.1", 443), timeout=5), server_hostname=server_name)
        connection.request("GET", "/", headers={"Host": server_name})
        body = connection.getresponse().read().decode()
        cert = connection.sock.getpeercert()
        names = ",".join(value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS")
        return names, body
    finally:
        connection.close()


async def test_https_route_gets_a_certificate_from_pebble_that_a_client_verifies() -> None:
    work = Path("/tmp") / f"fe-pebble-{os.getpid()}"
    async with edge_lab(listen=[], http_port=80, https_port=443,
                        acme_directory=DIRECTORY, acme_email="ops@example.test",
                        acme_ca_root=str(work / "ca.pem")) as lab:
        pebble = await start_pebble(lab.edge_netns, work, http_port=80, tls_port=443)
        try:
            await lab.start_backend("b1")
            route = Route(NAME, "https", None, (lab.backend("b1"),), "secure")
            await lab.engine.start([route])
            root = await pebble.issued_root()
            errors: list[str] = []

            async def verified() -> tuple[str, str] | None:
                try:
                    return await asyncio.to_thread(call_in_netns, lab.edge_netns,
                                                   lambda: https_get(root, NAME))
                except (OSError, ssl.SSLError) as exc:
                    errors.append(str(exc))
                    return None

            names, body = await until(verified, timeout_s=60, every_s=0.5,
                                      what="a certificate from pebble served and verified",
                                      context=lambda: errors[-3:])
            assert names == NAME and body == "b1"
            # a client trusting another root does not accept the certificate
            other_root = (work / "ca.pem").read_bytes()  # the CA of pebble's own listener
            with pytest.raises(ssl.SSLError):
                await asyncio.to_thread(call_in_netns, lab.edge_netns,
                                        lambda: https_get(other_root, NAME))
            # plain HTTP for that host is redirected to HTTPS by the engine
            reply = await asyncio.to_thread(call_in_netns, lab.edge_netns, _plain_get)
            assert reply[0] == 308 and reply[1] == f"https://{NAME}/"
        finally:
            await pebble.stop()
            shutil.rmtree(work, ignore_errors=True)


def _plain_get() -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", 80, timeout=5)
    try:
        connection.request("GET", "/", headers={"Host": NAME})
        response = connection.getresponse()
        return response.status, response.getheader("Location") or ""
    finally:
        connection.close()
