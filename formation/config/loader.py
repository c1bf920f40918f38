"""Loads node.yaml and FORMATION_* overrides. Every error names the file (or variable), the key,
the line and what was expected, and nothing starts half-configured."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from formation.config import paths
from formation.config.settings import NodeSettings
from formation.errors import ConfigError

ENV_PREFIX = "FORMATION_"
_NOT_SETTINGS = {"FORMATION_CONFIG", "FORMATION_DEBUG"}  # steer the CLI, not the node


def node_lines(node: yaml.Node | None, prefix: tuple = ()) -> dict[tuple, int]:
    """Maps every key path in the YAML tree to its 1-based line, for error messages (the answer
    file's too); an empty document has none."""
    if node is None:
        return {}
    lines: dict[tuple, int] = {prefix: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, key.value)
            lines[path] = key.start_mark.line + 1
            lines.update({k: v for k, v in node_lines(value, path).items() if k != path})
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(node_lines(item, (*prefix, index)))
    return lines


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple, int]]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        raise ConfigError(f"{path}: {where}: invalid YAML: {exc.problem}") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ConfigError(f"{path}: line 1: expected a mapping of settings, got a {kind}")
    return data, node_lines(node)


def _env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple, str]]:
    """FORMATION_API__LISTEN=... sets api.listen; values are parsed as YAML scalars."""
    data: dict[str, Any] = {}
    sources: dict[tuple, str] = {}
    for var, raw in environ.items():
        if not var.startswith(ENV_PREFIX) or var in _NOT_SETTINGS:
            continue
        keys = tuple(part.lower() for part in var[len(ENV_PREFIX) :].split("__"))
        try:
            value = yaml.safe_load(raw) if raw else raw
        except yaml.YAMLError:
            value = raw
        target = data
        for key in keys[:-1]:
            target = target.setdefault(key, {})
            if not isinstance(target, dict):
                raise ConfigError(f"environment {var}: conflicts with another FORMATION_ variable")
        target[keys[-1]] = value
        sources[keys] = var
    return data, sources


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _describe(error: ErrorDetails, file: Path | None, lines: dict, env: dict) -> str:
    loc = tuple(error["loc"])
    key = ".".join(str(part) for part in loc) or "(top level)"
    expected = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        expected = "unknown key (check the spelling; see `formation node --help`)"
    for depth in range(len(loc), 0, -1):
        if loc[:depth] in env:
            return f"environment {env[loc[:depth]]}: key '{key}': {expected}"
    for depth in range(len(loc), -1, -1):
        if loc[:depth] in lines:
            return f"{file}: line {lines[loc[:depth]]}: key '{key}': {expected}"
    return f"{file or 'defaults'}: key '{key}': {expected}"


def load_settings(
    config_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> NodeSettings:
    """An explicit --config must exist; the default path may be absent (defaults apply)."""
    environ = os.environ if environ is None else environ
    explicit = config_file or (Path(environ["FORMATION_CONFIG"]) if "FORMATION_CONFIG" in environ
                               else None)
    path = explicit or paths.default_config_file()
    data: dict[str, Any] = {}
    lines: dict[tuple, int] = {}
    if explicit is not None or path.exists():
        if not path.exists():
            raise ConfigError(f"{path}: no such config file")
        data, lines = _read_yaml(path)
    env_data, env_sources = _env_overrides(environ)
    try:
        return NodeSettings.model_validate(deep_merge(data, env_data))
    except ValidationError as exc:
        messages = [_describe(err, path, lines, env_sources) for err in exc.errors()]
        extra = f" (and {len(messages) - 1} more)" if len(messages) > 1 else ""
        raise ConfigError(messages[0] + extra) from None
