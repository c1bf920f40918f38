"""`formation pack`: workloads described by Formfiles. `validate` needs no node (it runs on a
laptop); `build` and `ship` (formation.commands.pack_build) ask a node to build the image."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from formation.commands.common import json_option


@click.group()
def pack() -> None:
    """Workloads from Formfiles: check one, build it into an image, run it.

    \b
      formation kit init              write a starter Formfile here
      formation pack validate         check ./Formfile and show how it was read
      formation pack build            build its image on the node (progress, cached steps)
      formation pack ship --watch     build or reuse it, then run it as an instance

    A Formfile lists what a workload's VM image holds (packages, files, users, a command to
    run) and what each instance gets (vCPUs, memory, disk). See docs/formfile.md.
    """


@pack.command()
@click.argument("path", required=False, default=".", metavar="[DIR|FILE]",
                type=click.Path(path_type=Path))
@json_option
def validate(path: Path, as_json: bool) -> None:
    """Check a Formfile (DIR/Formfile, or FILE; default ./Formfile) and print how it was read.

    Every problem is printed at once as FILE:LINE:COLUMN: message, and the exit status is 2.
    With --json: the parsed Formfile as JSON, or {"problems": [...]} and exit status 2.
    """
    from formation.pack.formfile import FormfileError, load_formfile
    from formation.pack.formfile.summary import summary_lines

    file = path / "Formfile" if path.is_dir() else path
    try:
        spec, context = load_formfile(path)
    except FormfileError as exc:
        if as_json:
            problems = [{"line": p.line, "column": p.column, "message": p.message}
                        for p in exc.problems]
            click.echo(json.dumps({"file": str(file), "problems": problems}, indent=2))
        else:
            for problem in exc.problems:  # a whole-file problem's message names the file
                shown = problem.message if problem.line == 0 else problem.located(str(file))
                click.echo(shown, err=True)
            count = len(exc.problems)
            click.echo(f"{count} problem{'s' if count > 1 else ''} in {file}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(spec.to_dict(), indent=2))
        return
    click.echo(f"{file}: ok (build context {context})")
    for line in summary_lines(spec):
        click.echo(line)


from formation.commands.pack_build import build, ship  # noqa: E402

pack.add_command(build)
pack.add_command(ship)
