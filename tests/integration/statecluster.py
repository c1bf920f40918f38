"""Real `formation node` processes on loopback for state store tests: each with its own data
directory, config file, unix socket and TCP port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

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
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.read_log()[-2000:]}")
            if self._answers():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start: {self.read_log()[-2000:]}")

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
    deadline = time.monotonic() + timeout_s
    last: list = []
    while time.monotonic() < deadline:
        with contextlib.suppress(NodeUnreachable):
            last = [(await call(n, sr.state_heads)).heads for n in nodes]
            if last[0] and all(h == last[0] for h in last):
                return last[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"no convergence in {timeout_s}s: {last}")


def cleanup(nodes: list[NodeProc]) -> None:
    for n in nodes:
        with contextlib.suppress(Exception):
            n.stop(signal.SIGKILL)

