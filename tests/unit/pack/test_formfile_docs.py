"""The reference's examples are Formfiles the parser accepts, and its directive table lists
exactly the parser's directives and aliases: docs/formfile.md cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

from formation.pack.formfile import parse_formfile
from formation.pack.formfile.table import ALIASES, DIRECTIVES

DOC = Path(__file__).resolve().parents[3] / "docs" / "formfile.md"


def _blocks() -> list[str]:
    return re.findall(r"```\n(.*?)```", DOC.read_text(), re.S)


def test_the_complete_example_parses() -> None:
    example = next(block for block in _blocks() if block.startswith("# The web workload"))
    spec = parse_formfile(example, None)
    assert (spec.name, spec.vcpus, spec.memory_mib, spec.disk_gb) == ("web", 2, 2048, 10)
    assert spec.entrypoint is not None and spec.entrypoint.argv == (
        "/srv/app/.venv/bin/python", "-m", "app")


def test_the_user_examples_parse() -> None:
    block = next(block for block in _blocks() if block.startswith("USER "))
    spec = parse_formfile("NAME x\n" + block, None)
    assert len(spec.steps) == 2


def test_the_table_lists_every_directive_and_alias() -> None:
    rows = re.findall(r"^\| `([A-Z]+)` \| ([^|]*)\|", DOC.read_text(), re.M)
    assert sorted(name for name, _ in rows) == sorted(DIRECTIVES)
    aliases = {alias: name for name, cell in rows for alias in re.findall(r"`([A-Z]+)`", cell)}
    assert aliases == ALIASES
