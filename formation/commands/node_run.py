"""Running the node service, without click: the click command (formation/commands/node.py) and
the appliance's `formation node` (systemd's ExecStart, through formation.launcher's fast path)
both come here. Under emulation the node's start-up is most of the appliance's boot, and click
with the command table is a second of it."""

from __future__ import annotations

import gc
import os
from pathlib import Path

from formation.commands.context import Context


def run_node(obj: Context) -> None:
    """Serve until SIGTERM or Ctrl-C; a startup error is raised for the caller's one line."""
    # Start-up is imports and class definitions: hundreds of thousands of objects that live as
    # long as the process, and next to no garbage. The cyclic collector's passes over them are
    # about 6 % of the CPU to READY (bench/startup.py), a second of the appliance's boot under
    # emulation, so it is off until the service is built; those objects are then frozen out of
    # its generations.
    gc.disable()
    try:
        from formation.config.paths import default_config_file
        from formation.node.logs import setup_logging
        from formation.node.service import NodeService

        settings = obj.settings
        setup_logging(settings.log.level, settings.log.format)
        service = NodeService(settings, obj.config_file or default_config_file())
    finally:
        gc.freeze()
        gc.enable()
    import asyncio

    asyncio.run(service.run_until_signalled())


def parse_node_form(argv: list[str]) -> tuple[str | None] | None:
    """(config file,) from `[--config F] node` (`--config=F` too); None for any other form,
    which click then handles (`node --help`, options of the group it does not know)."""
    if argv == ["node"]:
        return (None,)
    if len(argv) == 3 and argv[0] == "--config" and argv[2] == "node":
        return (argv[1],)
    if len(argv) == 2 and argv[0].startswith("--config=") and argv[1] == "node":
        return (argv[0].removeprefix("--config="),)
    return None


def run_fast(argv: list[str]) -> int | None:
    """The appliance's `formation node` (and the same with `--config F`)."""
    form = parse_node_form(argv)
    if form is None:
        return None
    config = form[0] or os.environ.get("FORMATION_CONFIG")  # click's envvar for --config
    run_node(Context(Path(config) if config else None))
    return 0
