"""What every command shares: the lazily loaded settings, the client to the node, options.

Imported by every command, so it imports only click: settings (pydantic, yaml), asyncio and the
API client load when a command first needs them (see tests/unit/test_cli_imports.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    from formation.config import NodeSettings

T = TypeVar("T")

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
node_option = click.option(
    "--node", "node_address", metavar="HOST:PORT",
    help="Talk to the node at this TCP address (signed with this host's key) instead of the "
    "local unix socket.",
)


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


def run(coro_factory: Callable[[], Awaitable[T]]) -> T:
    import asyncio

    return asyncio.run(coro_factory())  # type: ignore[arg-type]


