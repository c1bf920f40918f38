"""`formation ssh-keys USER`: sshd's AuthorizedKeysCommand. The drop-in's form (with --socket)
never gets here: formation.launcher runs it through formation/commands/authorized_keys.py
before click is imported. This click command serves `--help` and the form without --socket,
which loads the node's settings (pydantic, yaml) to find the socket. The node answers from the
replicated admin list, so neither keeps a copy of it."""

from __future__ import annotations

from pathlib import Path

import click

from formation.commands.authorized_keys import (
    DEFAULT_USER,
    KEYS_PATH,
    TIMEOUT_S,
    KeysError,
    authorized_keys_text,
    fetch_key_lines,
    http_get_unix,
)
from formation.commands.common import Context
from formation.errors import FormationError

__all__ = ["DEFAULT_USER", "KEYS_PATH", "fetch_authorized_keys", "http_get_unix", "ssh_keys"]


def fetch_authorized_keys(socket_path: Path, timeout_s: float = TIMEOUT_S) -> list[str]:
    """The node's authorized_keys lines; FormationError naming the socket if it does not answer."""
    try:
        return fetch_key_lines(socket_path, timeout_s)
    except KeysError as exc:
        raise FormationError(str(exc)) from None


@click.command("ssh-keys")
@click.argument("user")
@click.option("--console-user", default=DEFAULT_USER, show_default=True,
              help="Only this account gets keys; any other user gets none.")
@click.option("--socket", "socket_path", default=None,
              type=click.Path(path_type=Path, readable=False),
              help="The node's API socket (default: api.socket of the node's settings).")
@click.pass_obj
def ssh_keys(obj: Context, user: str, console_user: str, socket_path: Path | None) -> None:
    """Print the admin SSH public keys allowed to log in as USER (for AuthorizedKeysCommand).

    The running node answers: the admin accounts of the replicated state and its own
    admin_ssh_keys setting. Prints nothing for any user but the console user; with no node
    answering, prints nothing and exits 1 (nobody logs in).
    """
    if user != console_user:
        return
    lines = fetch_authorized_keys(socket_path or obj.settings.api.socket)
    click.echo(authorized_keys_text(lines), nl=False)
