"""`formation kit init`: start a workload by writing a starter Formfile, asking for what the
flags did not give (or taking the defaults with --yes). What it writes is parsed before it is
written, so a starter that fails `pack validate` is a bug here, never the user's problem."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import click

from formation.errors import FormationError
from formation.pack.spec import DISK_GB, MEMORY_MIB, VCPUS


@click.group()
def kit() -> None:
    """Start a workload: write a starter Formfile to edit, validate and build."""


def _name(value: str) -> str:
    from formation.pack.formfile.values import NAME, NAME_EXPECTED

    if not NAME.fullmatch(value):
        raise click.BadParameter(f"expected {NAME_EXPECTED}, got {value!r}")
    return value


def _words(values: Sequence[str] | str) -> list[str]:
    text = values if isinstance(values, str) else " ".join(values)
    return [word for word in re.split(r"[\s,]+", text) if word]


def _packages(value: Sequence[str] | str) -> list[str]:
    from formation.pack.formfile.values import PACKAGE

    packages = _words(value)
    bad = [p for p in packages if not PACKAGE.fullmatch(p)]
    if bad:
        raise click.BadParameter(f"expected Debian package names, got {bad[0]!r}")
    return packages


def _ports(value: Sequence[str] | str) -> list[str]:
    ports = _words(value)
    for port in ports:
        match = re.fullmatch(r"([0-9]{1,5})(/(tcp|udp))?", port, re.IGNORECASE)
        if match is None or not 1 <= int(match.group(1)) <= 65535:
            raise click.BadParameter(f"expected ports 1-65535, optionally /tcp or /udp, "
                                     f"got {port!r}")
    return ports


def _checked(check):
    """An option callback: the flag's value through check (None when not given), so a bad
    flag is named by click ("Invalid value for '--install'") before anything is asked."""
    def callback(_ctx: click.Context, _param: click.Parameter, value):
        return check(value) if value else None
    return callback


def _ask(value, prompt: str, default, yes: bool, **kwargs):
    """The flag's value, else the default (--yes), else the answer to a prompt."""
    if value is not None:
        return value
    if yes:
        return default
    return click.prompt(prompt, default=default, **kwargs)


@kit.command()
@click.argument("directory", required=False, default=".", metavar="[DIR]",
                type=click.Path(path_type=Path, file_okay=False))
@click.option("--name", callback=_checked(_name),
              help="The workload's NAME (default: from the directory's name).")
@click.option("--vcpus", type=click.IntRange(*VCPUS), help="vCPUs of each instance (1).")
@click.option("--memory", type=click.IntRange(*MEMORY_MIB), metavar="MIB",
              help="Memory of each instance in MiB (512).")
@click.option("--disk", type=click.IntRange(*DISK_GB), metavar="GB",
              help="Disk of each instance in GB (5).")
@click.option("--install", multiple=True, metavar="PKG", callback=_checked(_packages),
              help="Debian packages to install (repeat, or separate with spaces or commas).")
@click.option("--expose", multiple=True, metavar="PORT", callback=_checked(_ports),
              help="Ports the workload serves, PORT or PORT/udp (repeat, or separate).")
@click.option("--yes", "-y", is_flag=True, help="Ask nothing: defaults for what flags omit.")
@click.option("--force", is_flag=True, help="Overwrite an existing Formfile.")
def init(directory: Path, name: str | None, vcpus: int | None, memory: int | None,
         disk: int | None, install: list[str] | None, expose: list[str] | None, yes: bool,
         force: bool) -> None:
    """Write a starter Formfile into DIR (default: here), asking for what flags omit.

    Refuses to overwrite an existing Formfile unless --force.
    """
    from formation.pack.formfile import FormfileError, parse_formfile
    from formation.pack.starter import DEFAULT_DISK_GB, default_name, starter_formfile

    target = directory / "Formfile"
    if target.exists() and not force:
        raise FormationError(f"{target} already exists: expected a directory without a "
                             "Formfile (or --force to overwrite it)")
    name = _ask(name, "Name", default_name(directory.resolve().name), yes, value_proc=_name)
    vcpus = _ask(vcpus, "vCPUs", 1, yes, type=click.IntRange(*VCPUS))
    memory = _ask(memory, "Memory (MiB)", MEMORY_MIB[0], yes, type=click.IntRange(*MEMORY_MIB))
    disk = _ask(disk, "Disk (GB)", DEFAULT_DISK_GB, yes, type=click.IntRange(*DISK_GB))
    packages = _ask(install, "Packages to install (space-separated)", "", yes,
                    value_proc=_packages, show_default=False)
    ports = _ask(expose, "Ports to expose (space-separated)", "", yes, value_proc=_ports,
                 show_default=False)
    assert name is not None and vcpus is not None and memory is not None and disk is not None
    text = starter_formfile(name, vcpus=vcpus, memory_mib=memory, disk_gb=disk,
                            packages=_packages(packages or ""), expose=_ports(ports or ""))
    try:
        parse_formfile(text, None)
    except FormfileError as exc:  # a bug: never write a starter that does not validate
        raise FormationError(f"the starter Formfile does not validate: {exc}") from None
    directory.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    click.echo(f"wrote {target}: edit it, then `formation pack validate {directory}`")
