"""`formation node`: the node service itself, in the foreground."""

from __future__ import annotations

import click

from formation.commands.common import Context


@click.command()
@click.option("--wait-for-data-mount", is_flag=True,
              help="Import first, then wait (up to 170 s) until data_dir is a mount point "
              "before starting: for a unit that starts the node while its data partition is "
              "still being mounted (the appliance).")
@click.pass_obj
def node(obj: Context, wait_for_data_mount: bool) -> None:
    """Run the node service in the foreground until SIGTERM or Ctrl-C.

    It serves the API on the unix socket (and on api.listen for other nodes), logs to stderr in
    logfmt (or JSON with log.format: json), and finishes in-flight requests before it exits.
    """
    from formation.commands.node_run import run_node

    run_node(obj, wait_for_data_mount=wait_for_data_mount)
