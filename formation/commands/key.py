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
      formation key create [PATH]        a new Ed25519 key (mode 0600) and PATH.pub
      formation key create --ssh-agent   use your ssh-agent's Ed25519 key instead: prints it
      formation key show [PATH]          the public key of a key file
      formation key show agent:[NAME]    ... of an ssh-agent key (NAME: SHA256:... or comment)

    An ssh-agent key is then given as --key agent: (or agent:NAME) to every client command.
    """


@key.command("create")
@click.argument("path", required=False, metavar="[PATH]")
@click.option("--ssh-agent", "ssh_agent", is_flag=True,
              help="Make no file: print the public key of your ssh-agent's Ed25519 key (its "
              "secret stays in the agent); then use --key agent: with client commands.")
@json_option
def create(path: str | None, ssh_agent: bool, as_json: bool) -> None:
    """Make a new key at PATH (default ~/.config/formation/account.key); never overwrites."""
    from formation.client_profile import ProfileError, create_key

    if ssh_agent:
        if path is not None:
            raise ProfileError(f"--ssh-agent: expected no PATH (got {path}): the key stays in "
                               "the agent; name one of several with `key show agent:NAME`")
        _show_agent("agent:", as_json)
        return
    file = Path(path or DEFAULT_KEY).expanduser()
    identity = create_key(file)
    _show(file, identity.public_key_hex, as_json)


@key.command("show")
@click.argument("path", default=DEFAULT_KEY, metavar="[PATH]")
@json_option
def show(path: str, as_json: bool) -> None:
    """Print the public key of the key file at PATH (what an admin adds to an account), or of
    the ssh-agent key named agent:[SHA256:...|COMMENT]."""
    from formation.client_profile import load_key
    from formation.identity.agent import is_agent_spec

    if is_agent_spec(path):
        _show_agent(path, as_json)
        return
    file = Path(path).expanduser()
    _show(file, load_key(file).public_key_hex, as_json)


def _show(path: Path, public: str, as_json: bool) -> None:
    if as_json:
        from formation.cli_output import emit_json

        emit_json({"path": str(path), "public_key": public, "public_file": f"{path}.pub"})
    else:
        click.echo(public)


def _show_agent(spec: str, as_json: bool) -> None:
    from formation.identity.agent import agent_signer

    signer = agent_signer(spec)
    if as_json:
        from formation.cli_output import emit_json

        emit_json({"agent": signer.key.fingerprint, "comment": signer.key.comment,
                   "public_key": signer.public_key_hex, "key": f"agent:{signer.key.fingerprint}"})
    else:
        click.echo(signer.public_key_hex)
