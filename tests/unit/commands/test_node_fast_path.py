"""systemd's `formation node` (and the same with `--config F`) runs the node without click
(formation.launcher -> node_run); any other form is click's. The process itself, with READY and
the parts started after it, is tested in tests/integration/node/test_node_ready.py."""

from __future__ import annotations

import json

import pytest
from launcher_probe import launcher_output

from formation.commands.node_run import parse_node_form


@pytest.mark.parametrize(("argv", "parsed"), [
    (["node"], (None, False)),
    (["node", "--wait-for-data-mount"], (None, True)),
    (["--config", "/c.yaml", "node"], ("/c.yaml", False)),
    (["--config=/c.yaml", "node", "--wait-for-data-mount"], ("/c.yaml", True)),
])
def test_the_unit_forms_take_the_fast_path(argv, parsed) -> None:
    assert parse_node_form(argv) == parsed


@pytest.mark.parametrize("argv", [
    ["node", "--help"], ["--config", "node"], ["--version", "node"], ["status", "node"], [],
    ["--wait-for-data-mount", "node"], ["node", "--wait-for-data-mount", "--help"],
])
def test_any_other_form_goes_to_click(argv) -> None:
    assert parse_node_form(argv) is None


def _modules_when_the_node_runs(args: list[str]) -> list:
    """Runs the launcher with run_node replaced by a probe that prints what it got and
    sys.modules."""
    return json.loads(launcher_output(
        "import formation.commands.node_run as run\n"
        "run.run_node = lambda obj, wait_for_data_mount: print(json.dumps("
        "[str(obj.config_file), wait_for_data_mount, sorted(sys.modules)]))", args))


def test_the_node_starts_without_click() -> None:
    config, wait, modules = _modules_when_the_node_runs(
        ["--config", "/n.yaml", "node", "--wait-for-data-mount"])
    assert config == "/n.yaml" and wait is True
    assert [m for m in modules if m.split(".")[0] == "click" or m == "formation.cli"] == []
