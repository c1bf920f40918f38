"""Debian's pebble (a small ACME CA for tests) and pebble-challtestsrv (its DNS: every name is
127.0.0.1) started in a namespace the test created, next to the edge, so the CA validates the
edge's challenges on the edge's own ports and nothing leaves the namespace.

Pebble serves its ACME directory over HTTPS with a certificate this helper makes (openssl,
a throw-away CA: `ca_root`, the edge's `acme_ca_root`); the root of the certificates it issues
is new on every run and read from its management port (`issued_root`)."""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from waiting import until

from bench.support.testbed import sh
from formation.node.net.host import call_in_netns

ACME_PORT, MANAGEMENT_PORT, DNS_PORT = 14000, 15000, 8053
DIRECTORY = f"https://127.0.0.1:{ACME_PORT}/dir"


@dataclass
class Pebble:
    netns: str
    work: Path
    processes: list[asyncio.subprocess.Process]

    @property
    def ca_root(self) -> Path:
        return self.work / "ca.pem"

    def _get(self, url: str) -> bytes:
        context = ssl.create_default_context(cafile=str(self.ca_root))
        with urllib.request.urlopen(url, context=context, timeout=5) as response:
            return bytes(response.read())

    async def issued_root(self) -> bytes:
        """The PEM root of the certificates pebble issues (new every run)."""
        return await asyncio.to_thread(call_in_netns, self.netns, lambda: self._get(
            f"https://127.0.0.1:{MANAGEMENT_PORT}/roots/0"))

    async def answering(self) -> bool:
        try:
            await asyncio.to_thread(call_in_netns, self.netns, lambda: self._get(DIRECTORY))
            return True
        except OSError:
            return False

    async def stop(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.kill()
            await process.wait()


async def make_listener_certificate(work: Path) -> None:
    """A CA and, signed by it, pebble's HTTPS certificate for 127.0.0.1."""
    ca_key, ca, key, csr, cert = (work / n for n in ("ca.key", "ca.pem", "key.pem", "req.csr",
                                                     "cert.pem"))
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    await sh("openssl", "req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca),
             "-days", "1", "-subj", "/CN=formation edge test ACME CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    await sh("openssl", "req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", "/CN=pebble")
    extensions = work / "ext.cnf"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                          "extendedKeyUsage=serverAuth\n")
    await sh("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-out", str(cert), "-days", "1", "-extfile", str(extensions))


async def start_pebble(netns: str, work: Path, http_port: int, tls_port: int,
                       answer_ip: str = "127.0.0.1") -> Pebble:
    """Pebble validating HTTP-01 on `http_port` and TLS-ALPN-01 on `tls_port` (the edge's),
    at `answer_ip`: what its DNS answers for every name."""
    work.mkdir(parents=True, exist_ok=True)
    await make_listener_certificate(work)
    config = work / "pebble.json"
    config.write_text(json.dumps({"pebble": {
        "listenAddress": f"127.0.0.1:{ACME_PORT}",
        "managementListenAddress": f"127.0.0.1:{MANAGEMENT_PORT}",
        "certificate": str(work / "cert.pem"), "privateKey": str(work / "key.pem"),
        "httpPort": http_port, "tlsPort": tls_port, "ocspResponderURL": "",
        "externalAccountBindingRequired": False}}))
    netns_exec = ("ip", "netns", "exec", netns)
    # no random validation delays, no rejected nonces: the test waits for the certificate only
    env = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PATH": "/usr/bin:/bin"}
    log = (work / "pebble.log").open("wb")
    dns = await asyncio.create_subprocess_exec(
        *netns_exec, "pebble-challtestsrv", "-defaultIPv4", answer_ip, "-defaultIPv6", "",
        "-dns01", f"127.0.0.1:{DNS_PORT}", "-http01", "", "-https01", "", "-tlsalpn01", "",
        "-management", "127.0.0.1:8055", stdin=asyncio.subprocess.DEVNULL, stdout=log,
        stderr=log, env=env)
    ca = await asyncio.create_subprocess_exec(
        *netns_exec, "pebble", "-config", str(config), "-dnsserver", f"127.0.0.1:{DNS_PORT}",
        stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, env=env)
    log.close()
    pebble = Pebble(netns, work, [dns, ca])
    try:
        await until(pebble.answering, timeout_s=20, what="pebble's ACME directory",
                    context=lambda: (work / "pebble.log").read_text(errors="replace")[-2000:])
    except BaseException:
        await pebble.stop()
        raise
    return pebble
