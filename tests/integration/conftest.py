"""`formation node` as a real subprocess with its own config, data directory and socket."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from waiting import until_sync

STARTED = "node service started"


def clean_env() -> dict[str, str]:
    """The caller's FORMATION_* variables must not leak into the node under test."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FORMATION_")}


def formation(*args: str, timeout: float = 60, env: dict | None = None
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "formation", *args], capture_output=True,
                          text=True, timeout=timeout, env=env or clean_env())


@dataclass
class NodeProcess:
    proc: subprocess.Popen
    config: Path
    socket: Path
    data_dir: Path
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait_started(self, timeout_s: float = 30.0) -> None:
        def started() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"formation node exited {self.proc.returncode}: "
                                     f"{self.stderr()}")
            return STARTED in self.stderr() and self.socket.exists()

        until_sync(started, timeout_s, what="formation node to start", context=self.stderr)

    @property
    def tcp_address(self) -> str:
        match = re.search(r"tcp:([0-9.]+:\d+)", self.stderr())
        assert match, "the node logs its TCP address when api.listen is set"
        return match.group(1)

    def terminate(self, timeout_s: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def write_config(base: Path, **overrides) -> Path:
    config = {
        "name": "proc-node",
        "data_dir": str(base / "data"),
        "api": {"socket": str(base / "node.sock")},
        "log": {"level": "info"},
        "probe": {"boot_test": False},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    path = base / "node.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def start_node(short_tmp: Path) -> Iterator:
    """start_node(**config overrides) -> a started NodeProcess; all are stopped afterwards."""
    started: list[NodeProcess] = []

    def start(base: Path | None = None, **overrides) -> NodeProcess:
        base = base or short_tmp
        config = write_config(base, **overrides)
        settings = yaml.safe_load(config.read_text())
        stderr_path = base / f"node-{len(started)}.log"
        with open(stderr_path, "w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "formation", "--config", str(config), "node"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                env=clean_env(),
            )
        node = NodeProcess(proc, config, Path(settings["api"]["socket"]),
                           Path(settings["data_dir"]), stderr_path)
        started.append(node)
        node.wait_started()
        return node

    yield start
    for node in started:
        if node.proc.poll() is None:
            node.proc.kill()
            node.proc.wait()
