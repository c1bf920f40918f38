"""The console is a client of the API only: no module of formation.tui imports formation.node."""

from __future__ import annotations

import ast
from pathlib import Path

import formation.tui

TUI = Path(formation.tui.__file__).parent


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_tui_never_imports_the_node() -> None:
    offenders = {str(p.relative_to(TUI)): sorted(m for m in imported_modules(p)
                                                 if m.startswith("formation.node"))
                 for p in TUI.rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}
    assert len(offenders) > 10  # the scan really saw the package
