"""`formation lab`: N simulated hosts on this machine, each a real node in its own network and
mount namespaces, for demos and integration tests."""

from __future__ import annotations

import os
import sys

import click

from formation.cli_output import emit_json
from formation.commands.common import json_option

LAB_HELP = "Which lab (1-6 of a-z, 0-9); several can run at once. Default: lab."


def _lab():
    from formation.lab import Lab

    ctx = click.get_current_context()
    return Lab.attach(ctx.find_object(LabContext).lab_id)


class LabContext:
    def __init__(self, lab_id: str) -> None:
        self.lab_id = lab_id


@click.group()
@click.option("--name", "lab_id", default="lab", envvar="FORMATION_LAB", show_default=True,
              help=LAB_HELP)
@click.pass_context
def lab(ctx: click.Context, lab_id: str) -> None:
    """Run N simulated hosts on this machine (needs root).

    \b
    Each host is a network namespace plus a private mount namespace (its own /run/formation,
    /run/wireguard and data dir) on a bridge, addresses 10.77.0.11 and up, running a real
    `formation node`. Nothing is added to this machine's own network namespace.

    \b
      formation lab up 3                  start h1..h3
      formation lab status                who runs, who is cut off
      formation lab exec h1 -- formation peers
      formation lab console h2            the console of h2's node
      formation lab kill h3 / start h3    power cut (its node and VMs) / start again
      formation lab partition h3 / heal   cut h3 off from the rest / reconnect all
      formation lab down                  remove every namespace, link and process
    """
    ctx.obj = LabContext(lab_id)


@lab.command()
@click.argument("count", type=click.IntRange(1, 20))
@json_option
@click.pass_obj
def up(obj: LabContext, count: int, as_json: bool) -> None:
    """Start COUNT hosts (1 to 20) and wait until every node answers."""
    from formation.lab import Lab

    instance = Lab(count, obj.lab_id)
    instance.up()
    if as_json:
        emit_json(instance.status())
    else:
        _print_status(instance.status())


@lab.command()
@json_option
def status(as_json: bool) -> None:
    """Show each host: address, node pid, health, partition."""
    result = _lab().status()
    if as_json:
        emit_json(result)
    else:
        _print_status(result)


def _print_status(result: dict) -> None:
    click.echo(f"lab {result['lab']}  (state in {result['state_dir']})")
    for h in result["hosts"]:
        state = "healthy" if h["healthy"] else ("running" if h["running"] else "stopped")
        cut = "  partitioned" if h["partitioned"] else ""
        pid = f"pid {h['node_pid']}" if h["node_pid"] else "no node"
        click.echo(f"  {h['name']:<4} {h['api']:<17} {state:<8} {pid}{cut}")


@lab.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.argument("host")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(host: str, command: tuple[str, ...]) -> None:
    """Run COMMAND inside HOST (its namespaces and config): lab exec h1 -- formation peers."""
    argv, env = _lab().exec_argv(host, list(command))
    sys.stdout.flush()
    os.execvpe(argv[0], argv, env)


@lab.command()
@click.argument("host")
def console(host: str) -> None:
    """Open the console of HOST's node (attached to its node socket)."""
    argv, env = _lab().exec_argv(host, [sys.executable, "-m", "formation", "console"])
    os.execvpe(argv[0], argv, env)


@lab.command()
@click.argument("host")
def kill(host: str) -> None:
    """Pull HOST's power: SIGKILL its node and its VMs' processes (no goodbye)."""
    _lab().kill(host)
    click.echo(f"{host}: node and VMs killed")


@lab.command()
@click.argument("host")
def start(host: str) -> None:
    """Start HOST's node again (same identity and data)."""
    _lab().start(host)
    click.echo(f"{host}: node started")


@lab.command()
@click.argument("hosts", nargs=-1, required=True)
def partition(hosts: tuple[str, ...]) -> None:
    """Cut HOSTS off from the rest (they still reach each other)."""
    _lab().partition(list(hosts))
    click.echo(f"partitioned: {' '.join(hosts)} | the rest")


@lab.command()
def heal() -> None:
    """Undo every partition."""
    _lab().heal()
    click.echo("healed: all hosts on one bridge")


@lab.command()
@click.pass_obj
def down(obj: LabContext) -> None:
    """Remove every namespace, link, mount and process of the lab (also after a crash)."""
    from formation.lab.lab import destroy, require_root

    require_root()
    removed = destroy(obj.lab_id)
    click.echo(f"lab {obj.lab_id}: removed {len(removed['namespaces'])} namespaces, "
               f"stopped {len(removed['processes'])} processes")
