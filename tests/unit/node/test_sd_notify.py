"""The readiness message reaches a real datagram socket, as systemd's would, and the node's
later child processes do not inherit $NOTIFY_SOCKET."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from formation.node.sd_notify import sd_notify


def test_ready_is_sent_and_the_socket_not_inherited(short_tmp: Path, monkeypatch) -> None:
    path = short_tmp / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(str(path))
        receiver.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert sd_notify("READY=1", unset_environment=True)
        assert receiver.recv(64) == b"READY=1"
    child = subprocess.run([sys.executable, "-c",
                            "import os; print(os.environ.get('NOTIFY_SOCKET', 'unset'))"],
                           capture_output=True, text=True, check=True)
    assert child.stdout.strip() == "unset"
    assert not sd_notify("READY=1")  # nothing to send to any more


def test_without_systemd_nothing_is_sent(monkeypatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not sd_notify("READY=1")
