"""The `formation` command loads its subcommands lazily: `--help` still lists every command with
its one-line help (from the table in formation.cli), and that table says what each command's
own docstring says. Import costs are checked in a fresh interpreter, where nothing imported by
the test session can hide a heavy import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from formation.cli import COMMANDS, cli

HEAVY = ("textual", "aiohttp", "pydantic", "nacl", "zeroconf", "pyroute2", "yaml", "rich")


def modules_after(code: str) -> set[str]:
    """sys.modules of a fresh interpreter after running code (which must not exit)."""
    done = subprocess.run(
        [sys.executable, "-c", code + "\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def heavy_in(loaded: set[str]) -> list[str]:
    return sorted(m for m in loaded if m.split(".")[0] in HEAVY)


def test_help_lists_every_command_with_its_line() -> None:
    result = CliRunner().invoke(cli, ["--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    listed = result.output.split("Commands:")[1]
    rows = {line.split()[0]: " ".join(line.split()[1:])
            for line in listed.strip().splitlines()}
    assert set(rows) == {*COMMANDS, "version"}
    for name, (_target, line) in COMMANDS.items():
        assert rows[name] == line


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_table_line_is_the_commands_own_help(name: str) -> None:
    """Catches a command whose docstring changed while the table kept the old line, and a table
    entry pointing at a command that does not exist."""
    command = cli.get_command(None, name)  # type: ignore[arg-type]
    assert command is not None, f"{COMMANDS[name][0]} not found"
    assert command.name == name or name in cli.commands
    own = command.get_short_help_str(limit=1000)
    assert own == COMMANDS[name][1]


def test_importing_the_cli_loads_nothing_heavy() -> None:
    assert heavy_in(modules_after("import formation.cli")) == []


def test_help_and_version_load_nothing_heavy() -> None:
    run = ("import sys\nfrom formation.cli import cli\n"
           "for args in (['--help'], ['version'], ['--version'], ['ssh-keys', '--help'],"
           " ['console', '--help']):\n"
           "    try:\n        cli.main(args, standalone_mode=False)\n"
           "    except SystemExit:\n        pass\n")
    assert heavy_in(modules_after(run)) == []


def test_commands_still_run_from_the_script() -> None:
    done = subprocess.run([sys.executable, "-m", "formation", "version", "--json"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["python"] == sys.version.split()[0]
    unknown = subprocess.run([sys.executable, "-m", "formation", "frobnicate"],
                             capture_output=True, text=True, timeout=60, check=False)
    assert unknown.returncode == 2
    assert "No such command 'frobnicate'" in unknown.stderr
