"""Loads node.yaml and FORMATION_* overrides. Every error names the file (or variable), the key,
the line and what was expected, and nothing starts half-configured."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from formation.config import paths
from formation.config.settings import NodeSettings
from formation.config.yaml_file import YamlRefused, parse_yaml, read_yaml_file
from formation.errors import ConfigError

ENV_PREFIX = "FORMATION_"
_NOT_SETTINGS = {"FORMATION_CONFIG", "FORMATION_DEBUG"}  # steer the CLI, not the node


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple, int]]:
    try:
        document = read_yaml_file(path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except YamlRefused as exc:
        raise ConfigError(str(exc)) from None
    data = document.data
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ConfigError(f"{path}: line 1: expected a mapping of settings, got a {kind}")
    return data, document.lines


def _env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple, str]]:
    """FORMATION_API__LISTEN=... sets api.listen; values are parsed as YAML scalars."""
    data: dict[str, Any] = {}
    sources: dict[tuple, str] = {}
    for var, raw in environ.items():
        if not var.startswith(ENV_PREFIX) or var in _NOT_SETTINGS:
            continue
        keys = tuple(part.lower() for part in var[len(ENV_PREFIX) :].split("__"))
        try:
            value = parse_yaml(raw, var).data if raw else raw
        except YamlRefused:
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
