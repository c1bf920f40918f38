"""What every command shares: the lazily loaded settings, the client to the node, options.

Imported by every command, so it imports only click: settings (pydantic, yaml), asyncio and the
API client load when a command first needs them (see tests/unit/test_cli_imports.py)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click

from formation.commands.context import Context

__all__ = ["Context", "json_option", "node_option", "run"]

T = TypeVar("T")

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
node_option = click.option(
    "--node", "node_address", metavar="HOST:PORT",
    help="Talk to the node at this TCP address (signed with this host's key) instead of the "
    "local unix socket.",
)


def run(coro_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    import asyncio

    return asyncio.run(coro_factory())


