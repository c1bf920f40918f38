"""`formation console`: the Textual console, attached to a node or with one embedded.

Only this command imports Textual; it is imported when the command runs, so the rest of the CLI
(and sshd's `ssh-keys`) does not pay for it."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import click

from formation.commands.common import Context, node_option


@click.command()
@node_option
@click.option("--16-colours", "sixteen", is_flag=True, default=None,
              help="Use the 16-colour theme (automatic on the Linux console and TERM=vt220).")
@click.option("--no-embedded", is_flag=True,
              help="Never start a node inside the console (the SSH session uses this).")
@click.option("--socket", "socket_path", default=None,
              type=click.Path(path_type=Path, readable=False),
              help="The local node's API socket; the node's config file is then not read "
              "(the SSH session uses this: its user may not read the config).")
@click.pass_obj
def console(obj: Context, node_address: str | None, sixteen: bool | None,
            no_embedded: bool, socket_path: Path | None) -> None:
    """Open the console. With no node service running locally, one starts inside the console.

    With --node HOST:PORT it attaches to another node over TCP, every request signed with this
    host's key; inside, `n` switches between the local node and the bootstrap list.
    """
    from formation.tui.app import FormationApp

    app = FormationApp(client_factory=_client_factory(obj, socket_path),
                       start_embedded=None if no_embedded else _embedded_starter(obj),
                       node_address=node_address,
                       sixteen_colours=sixteen,
                       prepare=None if socket_path else lambda: obj.settings.bootstrap)
    app.run()
    if app.startup_error is not None:  # a bad config file: the CLI's one-line error
        raise app.startup_error
    if app.return_code:
        sys.exit(app.return_code)


def _client_factory(obj: Context, socket_path: Path | None):
    """address -> client: the local node on --socket if given, else as the settings say."""

    def client(address: str | None):
        if address is None and socket_path is not None:
            from formation.api.client import NodeClient

            return NodeClient.unix(socket_path)
        return obj.client(address)

    return client


def _embedded_starter(obj: Context) -> Callable[[], Awaitable[Callable[[], Awaitable[None]]]]:
    """Returns a coroutine function that starts a node service on the caller's loop and hands
    back its stop function. Logs go to a file: the console owns the terminal."""

    async def start() -> Callable[[], Awaitable[None]]:
        import asyncio

        from formation.config.paths import default_config_file
        from formation.node.logs import setup_logging
        from formation.node.service import NodeService

        settings = obj.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log_file = await asyncio.to_thread(open, settings.data_dir / "embedded-node.log", "a")
        setup_logging(settings.log.level, settings.log.format, stream=log_file)
        service = NodeService(settings, obj.config_file or default_config_file())
        await service.start()

        async def stop() -> None:
            await service.stop()
            log_file.close()

        return stop

    return start
