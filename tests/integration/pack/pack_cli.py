"""`formation` with `pack build` and `pack ship` in the `pack` group, as the lead wires them
(formation/commands/pack.py adds them; until that is merged, a group of their own). Run as
`python -m tests.integration.pack.pack_cli ARGS...`: the real CLI entry point, in a process."""

from __future__ import annotations

import click

from formation.cli import cli, main
from formation.commands.pack_build import build, ship


def pack_group() -> click.Group:
    ctx = click.Context(cli)
    found = cli.get_command(ctx, "pack")
    if isinstance(found, click.Group):
        group = found
    else:
        @click.group()
        def group() -> None:
            """Workloads from Formfiles."""

    for command in (build, ship):
        if command.name not in group.commands:
            group.add_command(command)
    return group


if __name__ == "__main__":
    cli.add_command(pack_group(), "pack")
    main()
