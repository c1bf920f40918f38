"""`formation node` as systemd runs it: through the launcher's fast path, READY=1 on
$NOTIFY_SOCKET once the API answers, the mesh and DNS started after it, a clean exit on SIGTERM;
with --wait-for-data-mount (the appliance's unit), nothing happens in the data directory until
its file system is mounted (a real tmpfs, in a mount namespace of the node's own)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from waiting import until_sync

from tests.integration.conftest import clean_env, write_config


def _wait_for(path: Path, text: str, proc: subprocess.Popen, timeout_s: float) -> str:
    """The node's log once it holds `text`."""
    def logged() -> str | None:
        log = path.read_text()
        assert proc.poll() is None or text in log, f"formation node exited {proc.returncode}: {log}"
        return log if text in log else None

    return until_sync(logged, timeout_s, what=f"{text!r} in the log", context=path.read_text)


@contextlib.contextmanager
def _node_process(argv: list[str], stderr: Path, env: dict[str, str]
                  ) -> Iterator[subprocess.Popen]:
    """`argv` started with its stderr in a file; killed afterwards if it is still running."""
    with stderr.open("w") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, env=env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ready_then_the_parts_started_after_it(short_tmp: Path) -> None:
    config = write_config(short_tmp)
    notify = short_tmp / "notify.sock"
    stderr = short_tmp / "node.log"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(str(notify))
        receiver.settimeout(30)
        with _node_process([sys.executable, "-m", "formation", "--config", str(config), "node"],
                           stderr, {**clean_env(), "NOTIFY_SOCKET": str(notify)}) as proc:
            assert receiver.recv(64) == b"READY=1"
            assert (short_tmp / "node.sock").exists(), "READY comes after the API socket"
            _wait_for(stderr, 'msg="started after ready" parts=mesh,dns', proc, 30)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
    log = stderr.read_text()
    assert "node service stopped" in log and "Traceback" not in log


@pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("nsenter") is None,
                    reason="needs util-linux's unshare and nsenter")
@pytest.mark.root
def test_the_node_waits_for_its_data_file_system(short_tmp: Path) -> None:
    data = short_tmp / "data"
    data.mkdir()
    config = write_config(short_tmp)
    stderr = short_tmp / "node.log"
    with _node_process(["unshare", "--mount", "--propagation", "private", "--", sys.executable,
                        "-m", "formation", "--config", str(config), "node",
                        "--wait-for-data-mount"], stderr, clean_env()) as proc:
        _wait_for(stderr, "waiting for the data directory's file system", proc, 30)
        time.sleep(0.3)
        assert list(data.iterdir()) == [], "nothing is written before the mount"
        assert not (short_tmp / "node.sock").exists()
        subprocess.run(["nsenter", "-t", str(proc.pid), "-m", "mount", "-t", "tmpfs",
                        "fm-data", str(data)], check=True, timeout=10)
        log = _wait_for(stderr, "node service started", proc, 30)
        assert 'msg="data directory mounted"' in log
        assert list(data.iterdir()) == [], "the identity went to the mounted file system"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
