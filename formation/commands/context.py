"""What a command runs with: the config file it was given, the settings loaded from it on first
use, and the client to a node. No click here: the console's SSH session starts without click
(formation.launcher)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from formation.config import NodeSettings


class Context:
    def __init__(self, config_file: Path | None) -> None:
        self.config_file = config_file
        self._settings: NodeSettings | None = None

    @property
    def settings(self) -> NodeSettings:
        if self._settings is None:
            from formation.config import load_settings

            self._settings = load_settings(self.config_file)
        return self._settings

    def client(self, node_address: str | None, timeout_s: float = 10.0):
        from formation.api.client import NodeClient

        if node_address:
            from formation.identity.store import load_identity

            identity = load_identity(self.settings.data_dir)
            return NodeClient.tcp(node_address, identity, timeout_s=timeout_s)
        return NodeClient.unix(self.settings.api.socket, timeout_s=timeout_s)
