"""`formation node`: the node service itself, in the foreground."""

from __future__ import annotations

import click

from formation.commands.common import Context


@click.command()
@click.pass_obj
def node(obj: Context) -> None:
    """Run the node service in the foreground until SIGTERM or Ctrl-C.

    It serves the API on the unix socket (and on api.listen for other nodes), logs to stderr in
    logfmt (or JSON with log.format: json), and finishes in-flight requests before it exits.
    """
    from formation.commands.node_run import run_node

    run_node(obj)
