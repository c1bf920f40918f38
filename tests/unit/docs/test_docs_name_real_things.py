"""The docs may only name what main has: every `formation ...` command in the README and the
docs resolves to a real command of the CLI, and every config key written as `section.key`
(with a section the settings have) is a field of the settings schema. So docs and code cannot
drift apart silently: a renamed flag or key fails here, naming the file and line."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from pydantic import BaseModel

from formation.cli import cli
from formation.config.settings import NodeSettings
from formation.node.state.rules import RULES

REPO = Path(__file__).resolve().parents[3]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# A span or code line that runs `formation WORD WORD ...` (after an optional prompt or sudo);
# the words end at anything else (a flag, an argument in capitals, a pipe).
COMMAND = re.compile(r"^\s*(?:[$#] )?(?:sudo )?formation((?: [a-z][a-z0-9-]*)+)")
KEY = re.compile(r"`([a-z_]+(?:\.[a-z_]+)+)`")


def _lines() -> list[tuple[str, int, str]]:
    return [(path.name, n, line) for path in DOCS
            for n, line in enumerate(path.read_text().splitlines(), 1)]


def _code_spans(line: str, in_block: bool) -> list[str]:
    return [line] if in_block else re.findall(r"`([^`]+)`", line)


def _commands() -> list[tuple[str, int, list[str]]]:
    found, in_block = [], False
    for name, n, line in _lines():
        if line.lstrip().startswith("```"):
            in_block = not in_block
            continue
        for span in _code_spans(line, in_block):
            if match := COMMAND.match(span):
                found.append((name, n, match.group(1).split()))
    return found


def _resolve(words: list[str]) -> str | None:
    """None when the words name a command (extra words are its arguments), else the problem."""
    command: click.Command = cli
    ctx = click.Context(cli)
    for depth, word in enumerate(words):
        if not isinstance(command, click.Group):
            return None  # the rest are arguments
        sub = command.get_command(ctx, word)
        if sub is None and "run" in command.commands and command.commands["run"].hidden:
            return None  # a group whose default command takes arguments (`formation join TOKEN`)
        if sub is None:
            path = " ".join(["formation", *words[:depth]])
            return f"`{path}` has no command {word!r}"
        command = sub
    return None


@pytest.mark.parametrize(("doc", "line", "words"), _commands(),
                         ids=lambda v: v if isinstance(v, str) else None)
def test_every_command_the_docs_name_exists(doc: str, line: int, words: list[str]) -> None:
    problem = _resolve(words)
    assert problem is None, f"{doc}:{line}: {problem}"


def _field(model: type[BaseModel], path: list[str]) -> bool:
    for depth, part in enumerate(path):
        info = model.model_fields.get(part)
        if info is None:
            return False
        inner = info.annotation
        if depth < len(path) - 1:
            if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
                return False
            model = inner
    return True


def _not_settings() -> set[str]:
    """Dotted names that are something else: op kinds (`dns.set`), Cloud Hypervisor endpoints
    (`vmm.ping`)."""
    spec = REPO / "bench" / "support" / "cloud-hypervisor-v53.0.yaml"  # the repo's copy
    endpoints = set(re.findall(r"^  /([a-z.-]+):", spec.read_text(), re.M))
    assert "vmm.ping" in endpoints, spec
    return set(RULES) | endpoints


def _keys() -> list[tuple[str, int, str]]:
    sections = {name for name, info in NodeSettings.model_fields.items()
                if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)}
    other = _not_settings()
    return [(name, n, key) for name, n, line in _lines() for key in KEY.findall(line)
            if key.split(".")[0] in sections and key not in other
            and not key.endswith((".pid", ".log", ".sock"))]  # files in a VM's directory


def test_the_docs_name_config_keys() -> None:
    assert len(_keys()) > 20  # the scan finds the operator guide's settings tables


@pytest.mark.parametrize(("doc", "line", "key"), _keys(),
                         ids=lambda v: v if isinstance(v, str) else None)
def test_every_config_key_the_docs_name_exists(doc: str, line: int, key: str) -> None:
    assert _field(NodeSettings, key.split(".")), \
        f"{doc}:{line}: `{key}` is not a setting (see formation/config/settings.py)"


def test_the_scan_finds_commands_and_would_catch_a_wrong_one() -> None:
    assert len(_commands()) > 40
    assert _resolve(["vm", "create"]) is None
    assert _resolve(["vm", "launch"]) == "`formation vm` has no command 'launch'"
    assert not _field(NodeSettings, ["mesh", "no_such_key"])
