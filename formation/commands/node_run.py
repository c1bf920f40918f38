"""Running the node service, without click: the click command (formation/commands/node.py) and
the appliance's `formation node` (systemd's ExecStart, through formation.launcher's fast path)
both come here. Under emulation the node's start-up is most of the appliance's boot, and click
with the command table is a second of it."""

from __future__ import annotations

import gc
import os
from pathlib import Path

from formation.commands.context import Context


def run_node(obj: Context, wait_for_data_mount: bool = False) -> None:
    """Serve until SIGTERM or Ctrl-C; a startup error is raised for the caller's one line.
    `wait_for_data_mount`: the modules are imported first, then the node waits for its data
    directory to be a mount point (formation/node/data_mount.py) before it starts."""
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
    if wait_for_data_mount:
        from formation.node.data_mount import wait_for_mount

        wait_for_mount(settings.data_dir)
    import asyncio

    asyncio.run(service.run_until_signalled())


WAIT_FLAG = "--wait-for-data-mount"


def parse_node_form(argv: list[str]) -> tuple[str | None, bool] | None:
    """(config file, wait for the data mount) from `[--config F] node [--wait-for-data-mount]`
    (`--config=F` too); None for any other form, which click then handles (`node --help`,
    options of the group it does not know)."""
    wait = argv[-1:] == [WAIT_FLAG]
    argv = argv[:-1] if wait else argv
    if argv == ["node"]:
        return (None, wait)
    if len(argv) == 3 and argv[0] == "--config" and argv[2] == "node":
        return (argv[1], wait)
    if len(argv) == 2 and argv[0].startswith("--config=") and argv[1] == "node":
        return (argv[0].removeprefix("--config="), wait)
    return None


def run_fast(argv: list[str]) -> int | None:
    """The appliance's `formation node` (and the same with `--config F`)."""
    form = parse_node_form(argv)
    if form is None:
        return None
    config = form[0] or os.environ.get("FORMATION_CONFIG")  # click's envvar for --config
    run_node(Context(Path(config) if config else None), wait_for_data_mount=form[1])
    return 0
