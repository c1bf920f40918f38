"""sshd's ForceCommand `formation [--config F] console --no-embedded --socket S` opens the
console without click (formation.launcher -> console_run); any other form of `console` is
click's, with its options and messages. The session itself is tested over a real sshd in
tests/tui/test_console_over_ssh.py."""

from __future__ import annotations

import json

import pytest
from launcher_probe import launcher_output

from formation.commands.console_run import parse_ssh_form


@pytest.mark.parametrize(("argv", "parsed"), [
    (["console", "--no-embedded", "--socket", "/s"], (None, "/s", None)),
    (["--config", "/c.yaml", "console", "--socket=/s", "--no-embedded"], ("/c.yaml", "/s", None)),
    (["console", "--16-colours", "--no-embedded", "--socket", "/s"], (None, "/s", True)),
])
def test_the_drop_in_forms_take_the_fast_path(argv, parsed) -> None:
    assert parse_ssh_form(argv) == parsed


@pytest.mark.parametrize("argv", [
    ["console"],
    ["console", "--socket", "/s"],  # may start an embedded node: needs the settings
    ["console", "--no-embedded", "--socket", "/s", "--node", "h:1"],
    ["console", "--no-embedded", "--socket", "/s", "--help"],
    ["console", "--no-embedded", "--socket"],
    ["console", "--config", "/c", "--no-embedded", "--socket", "/s"],
    ["--socket", "/s", "console", "--no-embedded"],
    ["console", "--no-embedded", "--socket", "/s", "--socket", "/t"],
    ["status", "console"],
])
def test_any_other_form_goes_to_click(argv) -> None:
    assert parse_ssh_form(argv) is None


def _modules_when_the_console_opens(args: list[str]) -> list[str] | None:
    """Runs the launcher with open_console replaced by a probe that prints sys.modules."""
    out = launcher_output("import formation.commands.console_run as run\n"
                          "run.open_console = lambda *a, **k: print(json.dumps("
                          "sorted(sys.modules)))", args)
    return json.loads(out) if out.startswith("[") else None


def test_the_ssh_session_opens_the_console_without_click() -> None:
    modules = _modules_when_the_console_opens(
        ["--config", "/nonexistent.yaml", "console", "--no-embedded", "--socket", "/s"])
    assert modules is not None
    assert [m for m in modules if m.split(".")[0] == "click" or m == "formation.cli"] == []


def test_the_other_forms_open_it_through_click() -> None:
    modules = _modules_when_the_console_opens(["console", "--no-embedded", "--socket", "/s",
                                               "--16-colours", "--node", "h:1"])
    assert modules is not None and "click" in modules and "formation.cli" in modules
