"""`formation key`: an account key on a person's own machine (no node needed)."""

from __future__ import annotations

from pathlib import Path

import click

from formation.commands.common import json_option

DEFAULT_KEY = "~/.config/formation/account.key"


@click.group()
def key() -> None:
    """Account keys: make one on your machine, give an admin its public part.

    \b
      formation key create [PATH]   a new Ed25519 key (mode 0600) and PATH.pub
      formation key show [PATH]     the public key of a key file
    """


@key.command("create")
@click.argument("path", default=DEFAULT_KEY, metavar="[PATH]")
@json_option
def create(path: str, as_json: bool) -> None:
    """Make a new key at PATH (default ~/.config/formation/account.key); never overwrites."""
    from formation.client_profile import create_key

    file = Path(path).expanduser()
    identity = create_key(file)
    _show(file, identity.public_key_hex, as_json)


@key.command("show")
@click.argument("path", default=DEFAULT_KEY, metavar="[PATH]")
@json_option
def show(path: str, as_json: bool) -> None:
    """Print the public key of the key file at PATH (what an admin adds to an account)."""
    from formation.client_profile import load_key

    file = Path(path).expanduser()
    _show(file, load_key(file).public_key_hex, as_json)


def _show(path: Path, public: str, as_json: bool) -> None:
    if as_json:
        from formation.cli_output import emit_json

        emit_json({"path": str(path), "public_key": public, "public_file": f"{path}.pub"})
    else:
        click.echo(public)
