"""Who gets the console over SSH: a real node answers `ssh_authorized_keys` from its
admin_ssh_keys setting and, once in a network, from the admin accounts of its replicated state;
`formation ssh-keys` (standard library only, over the unix socket) prints exactly those lines,
nothing for another user, and fails in one line when no node answers."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from pathlib import Path

import pytest
from settings_factory import make_settings

from formation.api import ssh_routes
from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api.client import NodeClient
from formation.commands.ssh_keys import fetch_authorized_keys
from formation.node.console_support.ssh_access import ssh_ed25519_line
from formation.node.service import NodeService

FORMATION = [sys.executable, "-m", "formation"]


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "c", "-f", str(path)],
                   check=True)
    return path.with_suffix(".pub").read_text().strip()


def raw_hex(openssh_line: str) -> str:
    return base64.b64decode(openssh_line.split()[1])[-32:].hex()


@pytest.fixture
async def keyed_node(short_tmp: Path):
    setting_key = keygen(short_tmp / "setting_key")
    service = NodeService(make_settings(short_tmp, admin_ssh_keys=[setting_key]))
    await service.start()
    yield service, setting_key
    await service.stop()


def test_the_command_asks_the_endpoint_the_api_defines() -> None:
    from formation.commands.ssh_keys import KEYS_PATH

    assert KEYS_PATH == ssh_routes.ssh_authorized_keys.path


def test_an_account_key_is_the_same_key_as_openssh_writes_it(short_tmp: Path) -> None:
    line = keygen(short_tmp / "key")
    assert ssh_ed25519_line(raw_hex(line), "c") == line


async def test_keys_from_setting_then_from_admin_accounts(keyed_node, short_tmp: Path) -> None:
    node, setting_key = keyed_node
    socket = node.settings.api.socket
    async with NodeClient.unix(socket) as client:
        before = await client.call(ssh_routes.ssh_authorized_keys)
        assert before.network is False
        assert [(k.line, k.source) for k in before.keys] == [(setting_key, "setting")]

        admin_key, member_key = keygen(short_tmp / "alice"), keygen(short_tmp / "bob")
        await client.call(sr.state_create_network, sm.CreateNetworkRequest(name="ssh-net"))
        for name, key, roles in (("alice", admin_key, ["admin"]), ("bob", member_key, ["member"])):
            await client.call(sr.state_append, sm.AppendRequest(
                kind="account.set", payload={"name": name, "keys": [raw_hex(key)],
                                             "roles": roles}))
        after = await client.call(ssh_routes.ssh_authorized_keys)
        assert after.network is True
        sources = {k.source: k.line.split()[:2] for k in after.keys}
        assert sources == {"setting": setting_key.split()[:2],
                           "account:alice": admin_key.split()[:2]}

        # what sshd gets, through the blocking stdlib client (in a thread: the node is on this loop)
        lines = await asyncio.to_thread(fetch_authorized_keys, socket)
        assert lines == [k.line for k in after.keys]

        await client.call(sr.state_append, sm.AppendRequest(
            kind="account.remove", payload={"name": "alice"}))
        removed = await client.call(ssh_routes.ssh_authorized_keys)
        assert [k.source for k in removed.keys] == ["setting"]


async def test_ssh_keys_command_prints_the_lines_only_for_the_console_user(keyed_node) -> None:
    node, setting_key = keyed_node
    socket = str(node.settings.api.socket)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*FORMATION, "ssh-keys", "--socket", socket, *args],
                              capture_output=True, text=True, timeout=30, check=False)

    mine, other = await asyncio.gather(
        asyncio.to_thread(run, "--console-user", "admin", "admin"),
        asyncio.to_thread(run, "--console-user", "admin", "mallory"))
    assert (mine.returncode, mine.stdout) == (0, setting_key + "\n")
    assert (other.returncode, other.stdout) == (0, "")


def test_no_node_means_no_keys_and_one_line(short_tmp: Path) -> None:
    done = subprocess.run([*FORMATION, "ssh-keys", "--socket", str(short_tmp / "none.sock"),
                           "formation"], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == (f"formation: error: no node service answers on "
                                   f"{short_tmp / 'none.sock'}: No such file or directory")


def test_a_hung_node_is_an_error_within_the_timeout(short_tmp: Path) -> None:
    """A socket that accepts and never answers: sshd must not wait forever for the keys."""
    import socket
    import time

    from formation.errors import FormationError

    path = short_tmp / "hung.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen()
        began = time.monotonic()
        with pytest.raises(FormationError, match=r"no node service answers on .*timed out"):
            fetch_authorized_keys(path, timeout_s=0.5)
        assert time.monotonic() - began < 5


def test_a_chunked_answer_is_read_whole(short_tmp: Path) -> None:
    """What an HTTP server may send instead of Content-Length, from a real socket."""
    import socket
    import threading

    from formation.commands.ssh_keys import http_get_unix

    path = short_tmp / "chunked.sock"
    body = b'{"keys": [{"line": "ssh-ed25519 AAAA x", "source": "setting"}]}'
    answer = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              + b"%x\r\n%s\r\n" % (10, body[:10]) + b"%x\r\n%s\r\n" % (len(body) - 10, body[10:])
              + b"0\r\n\r\n")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        server.listen()

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(answer)

        thread = threading.Thread(target=serve)
        thread.start()
        assert http_get_unix(path, "/v1/ssh/authorized-keys", 5.0) == (200, body)
        thread.join()
