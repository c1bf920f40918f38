"""The network CA end to end on loopback: one node service with the state and edge parts (the
real Caddy engine) and an https route for `web.fog` to an HTTP server on loopback (the
operator's own route, named as such). `formation ca init` (the CLI, against the node's socket)
writes the CA; the edge opens its sealed key and serves `web.fog` with a certificate from it: a
client trusting only the root printed by `formation ca show` verifies it and reaches the
backend; a client with the system's roots does not. `ca init` again is refused with one line;
`ca reseal` seals the key to a node that became an edge since; `ca init --rotate` replaces the
root on the running edge."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from ports import free_port
from settings_factory import make_settings
from waiting import until

from formation.identity import NodeIdentity
from formation.identity.sealing import open_sealed
from formation.node.edge.component import EdgeComponent
from formation.node.edge.fog_ca import key_matches
from formation.node.edge.routes import Backend, Route
from formation.node.edge.settings import EdgeSettings
from formation.node.service import NodeService
from formation.node.state.ca_rules import current
from formation.node.state.component import StateComponent

pytestmark = pytest.mark.skipif(not shutil.which("caddy"), reason="needs caddy "
                                "(scripts/system-packages.sh)")
HOST = "web.fog"


def https_get(port: int, context: ssl.SSLContext) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname=HOST) as tls:
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := tls.recv(65536):
            reply += chunk
    return reply


async def cli(config: Path, *args: str) -> subprocess.CompletedProcess:
    """The CLI in its own process; the node answers it from this test's loop meanwhile."""
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "formation", "--config", str(config), *args],
        capture_output=True, text=True, timeout=60)


async def test_fog_route_is_served_with_a_certificate_from_the_network_ca(
        short_tmp: Path) -> None:
    site = short_tmp / "site"
    site.mkdir()
    (site / "index.html").write_text("hello from the fog backend\n")
    backend_port, https_port = free_port(), free_port()
    backend = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "http.server", str(backend_port), "--bind", "127.0.0.1",
        "--directory", str(site), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    settings = EdgeSettings(enabled=True, listen=["127.0.0.1"], http_port=free_port(),
                            https_port=https_port, run_dir=short_tmp / "edge")
    state = StateComponent()
    edge = EdgeComponent(settings=settings, state=state, routes=[
        Route(HOST, "https", None, (Backend("127.0.0.1", backend_port),), "web")])
    node_settings = make_settings(short_tmp)
    config = short_tmp / "node.yaml"
    config.write_text(yaml.safe_dump(node_settings.model_dump(mode="json", exclude_unset=True)))
    service = NodeService(node_settings, components=[state, edge])
    try:
        await service.start()
        store = state.require_store()
        await store.create_network("lab", "10.42.0.0/16")

        # no network CA yet: web.fog is served from Caddy's own CA, which nobody trusts
        await until(lambda: _refused_verification(https_port), timeout_s=30, every_s=0.3,
                    what="web.fog served (from Caddy's own CA) before the network has one")

        made = await cli(config, "ca", "init", "--json")
        assert made.returncode == 0, made.stderr
        about = json.loads(made.stdout)
        assert [h["node"] for h in about["holders"]] == [store.identity.public_key_hex]
        shown = await cli(config, "ca", "show")
        assert shown.returncode == 0, shown.stderr
        root = shown.stdout
        assert root.startswith("-----BEGIN CERTIFICATE-----") and about["root_pem"] == root

        trusting = ssl.create_default_context(cadata=root)
        started = time.monotonic()
        reply = await until(lambda: _try(https_port, trusting), timeout_s=30, every_s=0.3,
                            what="web.fog served with a certificate from the network CA")
        assert reply.startswith(b"HTTP/1.1 200") and b"hello from the fog backend" in reply
        print(f"network CA applied and served in {time.monotonic() - started:.2f} s")
        with pytest.raises(ssl.SSLCertVerificationError):  # the system's roots do not vouch
            await asyncio.to_thread(https_get, https_port, ssl.create_default_context())

        ops = (await store.status())["ops"]
        again = await cli(config, "ca", "init")  # a second CA by mistake
        assert again.returncode == 1 and len(again.stderr.strip().splitlines()) == 1
        assert "already has a CA" in again.stderr
        assert (await store.status())["ops"] == ops

        unchanged = await cli(config, "ca", "reseal")
        assert unchanged.returncode == 0 and unchanged.stdout.startswith("nothing to do")
        newcomer = NodeIdentity.generate()  # a node that becomes an edge later
        await store.append("node.admit", {"node": newcomer.public_key_hex, "roles": ["member"]})
        await store.append("node.capabilities", {"node": newcomer.public_key_hex,
                                                 "capabilities": ["edge"]})
        assert "not yet sealed to 1" in (await cli(config, "ca", "show")).stderr
        resealed = await cli(config, "ca", "reseal", "--json")
        assert resealed.returncode == 0, resealed.stderr
        ca = current(await store.view("ca"))
        assert ca is not None and ca["root_pem"] == root
        assert key_matches(root, open_sealed(newcomer, ca["keys"][newcomer.public_key_hex])
                           .decode())
        # the edge keeps serving from the same root after the re-seal
        assert (await asyncio.to_thread(https_get, https_port, trusting)).startswith(
            b"HTTP/1.1 200")

        rotated = await cli(config, "ca", "init", "--rotate", "--json")
        assert rotated.returncode == 0, rotated.stderr
        new_root = json.loads(rotated.stdout)["root_pem"]
        assert new_root != root and len(json.loads(rotated.stdout)["holders"]) == 2
        started = time.monotonic()
        await until(lambda: _try(https_port, ssl.create_default_context(cadata=new_root)),
                    timeout_s=30, every_s=0.3, what="web.fog served from the rotated root")
        print(f"rotated root served in {time.monotonic() - started:.2f} s")
        assert len(list((short_tmp / "edge" / "fog-ca").iterdir())) == 2  # the old key is gone
    finally:
        await service.stop()
        backend.kill()
        await backend.wait()


async def _try(port: int, context: ssl.SSLContext) -> bytes | None:
    try:
        return await asyncio.to_thread(https_get, port, context)
    except (OSError, ssl.SSLError):
        return None


async def _refused_verification(port: int) -> bool:
    """True once the edge answers TLS for web.fog with a certificate the system roots reject."""
    try:
        await asyncio.to_thread(https_get, port, ssl.create_default_context())
    except ssl.SSLCertVerificationError:
        return True
    except (OSError, ssl.SSLError):
        return False
    raise AssertionError("web.fog verified against the system's roots")


async def test_ca_commands_refuse_with_one_line_and_the_root_is_public(short_tmp: Path) -> None:
    state = StateComponent()
    node_settings = make_settings(short_tmp)
    config = short_tmp / "node.yaml"
    config.write_text(yaml.safe_dump(node_settings.model_dump(mode="json", exclude_unset=True)))
    service = NodeService(node_settings, components=[state])
    try:
        await service.start()
        for args, words in ((("ca", "init"), "in no network yet"),
                            (("ca", "show"), "has no CA yet"),
                            (("ca", "reseal"), "has no CA yet")):
            done = await cli(config, *args)
            assert done.returncode == 1, (args, done.stdout, done.stderr)
            assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1
        store = state.require_store()
        assert (await store.status())["ops"] == 0  # nothing written
        await store.create_network("lab", "10.42.0.0/16")
        assert (await cli(config, "ca", "show")).returncode == 1
        address = await until(lambda: next((a[4:] for a in service.listen_addresses()
                                            if a.startswith("tcp:")), None),
                              what="the node's TCP address")
        far = await cli(config, "ca", "show", "--node", address)
        assert far.returncode == 1 and "has no CA yet" in far.stderr, far.stderr
        made = await cli(config, "ca", "init")
        assert made.returncode == 0 and made.stdout.startswith("network CA "), made.stderr
        ca = current(await store.view("ca"))
        assert ca is not None and made.stdout.split()[2].rstrip("…") in ca["fingerprint"]
        # from anywhere, without a key of the network: the root and its fingerprint, no key
        far = await cli(config, "ca", "show", "--node", address, "--json")
        assert far.returncode == 0, far.stderr
        assert json.loads(far.stdout) == {"fingerprint": ca["fingerprint"],
                                          "root_pem": ca["root_pem"]}
    finally:
        await service.stop()
