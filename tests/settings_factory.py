"""Node settings for tests: a temporary data dir and socket, TCP on an ephemeral loopback port,
and no KVM boot test (it takes seconds and is tested on its own)."""

from __future__ import annotations

from pathlib import Path

from formation.config.settings import NodeSettings


def make_settings(base: Path, **overrides) -> NodeSettings:
    data = {
        "name": "test-node",
        "data_dir": str(base / "data"),
        "api": {"socket": str(base / "node.sock"), "listen": "127.0.0.1:0"},
        "probe": {"boot_test": False},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return NodeSettings.model_validate(data)
