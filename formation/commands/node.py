"""`formation node`: the node service itself, in the foreground."""

from __future__ import annotations

import gc

import click

from formation.commands.common import Context, run


@click.command()
@click.pass_obj
def node(obj: Context) -> None:
    """Run the node service in the foreground until SIGTERM or Ctrl-C.

    It serves the API on the unix socket (and on api.listen for other nodes), logs to stderr in
    logfmt (or JSON with log.format: json), and finishes in-flight requests before it exits.
    """
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
    run(service.run_until_signalled)
