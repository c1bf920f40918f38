"""The layers of DESIGN.md as import-linter contracts (pyproject.toml, `[tool.importlinter]`),
checked over the import graph of the source tree these tests run against: the console reaches
the node only through the API, the API imports no part, discovery never imports the node, only
the CLI starts labs, and neither the node nor discovery imports textual. test_import_rules.py
checks what a fresh interpreter loads; these check every import statement, including those
under `if TYPE_CHECKING:`."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import formation

ROOT = Path(formation.__file__).resolve().parent.parent

LINT = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def lint_imports(*args: str) -> subprocess.CompletedProcess[str]:
    """`lint-imports` over the `formation` these tests import (not some other installed copy)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-c", LINT, "--no-cache", "--no-logo", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_every_contract_holds() -> None:
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    count = len(contracts["contracts"])
    done = lint_imports()
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Contracts: {count} kept, 0 broken." in done.stdout, done.stdout


def test_a_forbidden_import_is_reported(tmp_path: Path) -> None:
    """The positive control: the same run over a contract this tree breaks (discovery does
    import the API) fails and names the import, so a green run above saw the real graph."""
    config = tmp_path / "contracts.toml"
    config.write_text('[tool.importlinter]\nroot_package = "formation"\n\n'
                      '[[tool.importlinter.contracts]]\nname = "control"\n'
                      'type = "forbidden"\nsource_modules = ["formation.discovery"]\n'
                      'forbidden_modules = ["formation.api"]\n')
    done = lint_imports(str(config))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "formation.discovery.component -> formation.api" in done.stdout, done.stdout
