"""Real `formation node` processes on loopback for state store tests: each with its own data
directory, config file, unix socket and TCP port."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from waiting import until, until_sync

from formation.api import state_routes as sr
from formation.api.client import NodeClient, NodeUnreachable
from formation.identity import load_or_create_identity
from tests.ports import free_port


class NodeProc:
    def __init__(self, base: Path, name: str, interval_s: float = 0.5) -> None:
        self.dir = base / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.port = free_port()
        self.identity = load_or_create_identity(self.dir / "data")
        self.config = self.dir / "node.yaml"
        self.socket = self.dir / "node.sock"
        self.interval_s = interval_s
        self.peers: list[str] = []
        self.proc: subprocess.Popen | None = None

    @property
    def peer_spec(self) -> str:
        return f"{self.identity.public_key_hex}@127.0.0.1:{self.port}"

    def write_config(self) -> None:
        self.config.write_text(yaml.safe_dump({
            "name": self.name, "data_dir": str(self.dir / "data"),
            "api": {"socket": str(self.socket), "listen": f"127.0.0.1:{self.port}"},
            "probe": {"boot_test": False}, "log": {"level": "info"},
            "state": {"peers": self.peers, "anti_entropy_interval_s": self.interval_s},
        }))

    def start(self) -> None:
        self.write_config()
        self.log = open(self.dir / "node.log", "ab")  # closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "formation", "--config", str(self.config), "node"],
            stdout=self.log, stderr=subprocess.STDOUT)
        def answers() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.read_log()[-2000:]}")
            return self._answers()

        until_sync(answers, 20, what=f"{self.name} to answer",
                   context=lambda: self.read_log()[-2000:])

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(str(self.socket))
            except OSError:
                return False
        return True

    def read_log(self) -> str:
        return (self.dir / "node.log").read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        self.log.close()

    def client(self) -> NodeClient:
        return NodeClient.unix(self.socket, timeout_s=30)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "formation", "--config", str(self.config),
                               *args], capture_output=True, text=True, timeout=60)

    def cli_json(self, *args: str):
        result = self.cli(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


async def call(node: NodeProc, endpoint, body=None, query=None, **params):
    async with node.client() as client:
        return await client.call(endpoint, body, query, **params)


async def converged(nodes: list[NodeProc], timeout_s: float = 30.0) -> list[str]:
    """Waits until every node has the same heads; returns them."""
    async def same_heads() -> list[str] | None:
        with contextlib.suppress(NodeUnreachable):
            heads = [(await call(n, sr.state_heads)).heads for n in nodes]
            if heads[0] and all(h == heads[0] for h in heads):
                return heads[0]
        return None

    return await until(same_heads, timeout_s, 0.2, what="the same heads on every node")


def cleanup(nodes: list[NodeProc]) -> None:
    for n in nodes:
        with contextlib.suppress(Exception):
            n.stop(signal.SIGKILL)



@pytest.fixture(name="node")
def one_node(short_tmp: Path) -> Iterator[NodeProc]:
    """`node`: one real `formation node` process on loopback TCP, stopped after the test, for a
    test module that imports it (`from statecluster import one_node`); it stands in for the
    in-process node of tests/conftest.py there."""
    made = NodeProc(short_tmp, "f")
    made.start()
    yield made
    cleanup([made])
