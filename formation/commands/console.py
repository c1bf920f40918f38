"""`formation console`: the Textual console, attached to a node or with one embedded.

Only this command imports Textual; it is imported when the command runs, so the rest of the CLI
(and sshd's `ssh-keys`) does not pay for it. The work is in console_run.py, which the SSH
session's form reaches without click."""

from __future__ import annotations

from pathlib import Path

import click

from formation.commands.common import Context, node_option
from formation.commands.console_run import open_console


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
    open_console(obj, node_address, sixteen, no_embedded, socket_path)
