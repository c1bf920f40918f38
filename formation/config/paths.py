"""Where things live by default: system paths as root (the appliance), XDG paths otherwise."""

from __future__ import annotations

import os
from pathlib import Path


def is_root() -> bool:
    return os.geteuid() == 0


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def default_config_file() -> Path:
    if is_root():
        return Path("/etc/formation/node.yaml")
    return _xdg("XDG_CONFIG_HOME", ".config") / "formation" / "node.yaml"


def default_data_dir() -> Path:
    if is_root():
        return Path("/var/lib/formation")
    return _xdg("XDG_DATA_HOME", ".local/share") / "formation"


def default_runtime_dir() -> Path:
    if is_root():
        return Path("/run/formation")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "formation"
    return Path(f"/tmp/formation-{os.getuid()}")


def default_socket() -> Path:
    return default_runtime_dir() / "node.sock"
