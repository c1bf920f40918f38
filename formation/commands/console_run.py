"""Opening the console, without click: the click command (formation/commands/console.py) and
the SSH session's fast path both come here. sshd's ForceCommand is `formation [--config F]
console --no-embedded --socket S`; formation.launcher runs that form without importing click
and the command table (~50 ms of every SSH login's wait for the first frame)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from formation.commands.context import Context


def open_console(obj: Context, node_address: str | None = None, sixteen: bool | None = None,
                 no_embedded: bool = False, socket_path: Path | None = None) -> None:
    """Runs the console until it ends; a startup error is raised for the caller's one line.
    A config file that does not load ends it before the first frame (config_check.py)."""
    if socket_path is None:
        from formation.commands.config_check import start_config_check

        config_loads = start_config_check(obj)
    from formation.tui.app import FormationApp

    app = FormationApp(client_factory=_client_factory(obj, socket_path),
                       start_embedded=None if no_embedded else _embedded_starter(obj),
                       node_address=node_address,
                       sixteen_colours=sixteen,
                       prepare=None if socket_path else lambda: obj.settings.bootstrap)
    if socket_path is None:
        config_loads()
    app.run()
    if app.startup_error is not None:  # a bad config file: the CLI's one-line error
        raise app.startup_error
    if app.return_code:
        sys.exit(app.return_code)


def parse_ssh_form(argv: list[str]) -> tuple[str | None, str, bool | None] | None:
    """(config file, socket, 16 colours) from `[--config F] console --no-embedded --socket S
    [--16-colours]` (`--opt=value` too); None for any other form, which click then handles."""
    config: str | None = None
    socket: str | None = None
    sixteen: bool | None = None
    no_embedded = False
    args = iter(argv)
    seen_command = False
    for arg in args:
        name, has_value, value = arg.partition("=")
        if arg == "console" and not seen_command:
            seen_command = True
        elif name in ("--config", "--socket") and (name == "--socket") == seen_command:
            if not has_value:
                following = next(args, None)
                if following is None:
                    return None
                value = following
            if (config if name == "--config" else socket) is not None:
                return None
            if name == "--config":
                config = value
            else:
                socket = value
        elif arg == "--no-embedded" and seen_command:
            no_embedded = True
        elif arg == "--16-colours" and seen_command:
            sixteen = True
        else:
            return None
    if not (seen_command and no_embedded and socket):
        return None
    return config, socket, sixteen


def run_fast(argv: list[str]) -> int | None:
    """The SSH session's console without click; None if argv is not that form."""
    parsed = parse_ssh_form(argv)
    if parsed is None:
        return None
    config, socket, sixteen = parsed
    obj = Context(Path(config) if config else None)
    open_console(obj, sixteen=sixteen, no_embedded=True, socket_path=Path(socket))
    return 0


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
