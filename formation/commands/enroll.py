"""`formation enroll`: enrol this node from an answer file (what the headless appliance runs)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from formation.cli_output import emit_json
from formation.commands.common import Context, json_option, run


@click.command()
@click.option(
    "--answer-file", "answer_file", required=True, type=click.Path(path_type=Path),
    help="The answer file (YAML): network to found or join, admin keys, hostname, resources, "
         "underlay.",
)
@click.option("--check", is_flag=True, help="Only validate the answer file; change nothing.")
@json_option
@click.pass_obj
def enroll(obj: Context, answer_file: Path, check: bool, as_json: bool) -> None:
    """Enrol this node without the console, from an answer file.

    Every problem in the file is reported with its line (on stderr, so the journal and the serial
    console show it) before anything is done. Exit codes: 0 done (or valid, with --check),
    2 invalid answer file, 3 the node could not found or join the network. On a node that is
    already in a network it changes nothing and exits 0.

    \b
    Example answer file (docs/operations.md has the full reference):
      version: 1
      hostname: edge-01
      network:
        found: {name: lab}
      admin_keys:
        - ssh-ed25519 AAAAC3Nza... alice@laptop
    """
    from formation.enroll.answer_file import AnswerFileError, load_answer_file
    from formation.enroll.apply import apply_answer_file

    try:
        answer = load_answer_file(answer_file)
    except AnswerFileError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(exc.exit_code)
    if as_json:
        emit_json(answer)
    else:
        click.echo(f"{answer_file}: valid: {answer.summary()}")
    if check:
        return

    async def go() -> str:
        say = (lambda line: click.echo(line, err=True)) if as_json else click.echo
        join = answer.network.join
        awaits_approval = join is not None and not join.invite
        async with obj.client(None, timeout_s=720.0 if awaits_approval else 120.0) as client:
            return await apply_answer_file(answer, client, say)

    click.echo(run(go), err=as_json)
