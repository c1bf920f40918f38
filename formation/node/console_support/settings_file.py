"""Edits the node's config file for the console: merges the changed keys into the YAML, validates
the whole result as NodeSettings (so the node will start with it), and replaces the file
atomically (write a temporary file beside it, fsync, rename) so a crash never leaves half a file.
The file is edited round-trip (ruamel.yaml), so an operator's comments, key order and layout
survive an edit made from the console."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from formation.config.settings import NodeSettings, field_named_in
from formation.config.yaml_file import YamlRefused, parse_yaml, read_yaml_file
from formation.fileutil import write_text_atomically

if TYPE_CHECKING:
    from ruamel.yaml import YAML

EDITABLE = ("name", "bootstrap", "admin_ssh_keys", "underlay", "resources")
# Sections edited as a whole from the console; their other keys (underlay.networkd_dir) are kept.
NOT_EDITABLE = {"underlay": {"networkd_dir"}}


class SettingsRejected(ValueError):
    def __init__(self, message: str, fields: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.fields = fields


def _round_trip() -> YAML:
    """ruamel.yaml loads on the first edit, not with the node (tests/unit/test_import_rules.py)."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.default_flow_style = False
    return yaml


def _mapping(data: Any, path: Path) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsRejected(f"{path}: expected a mapping of settings", [])
    return data


def read_file(path: Path) -> dict[str, Any]:
    """The settings as the node itself reads them (PyYAML, YAML 1.1: `0660` is octal)."""
    if not path.exists():
        return {}
    try:
        return _mapping(read_yaml_file(path).data, path)
    except YamlRefused as exc:
        raise SettingsRejected(str(exc), []) from None


def edited_text(path: Path, changes: dict[str, Any]) -> str:
    """The file with `changes` merged in, its comments, order and scalar spellings kept
    (ruamel.yaml round trip). Only the changed keys are re-rendered."""
    from ruamel.yaml.error import YAMLError

    yaml_rt = _round_trip()
    try:
        data = _mapping(yaml_rt.load(path.read_text()) if path.exists() else None, path)
    except YAMLError as exc:
        raise SettingsRejected(f"{path}: not valid YAML: {exc}", []) from None
    _merge_into(data, changes)
    buffer = io.StringIO()
    yaml_rt.dump(data, buffer)
    return buffer.getvalue()


def validate(data: dict[str, Any]) -> NodeSettings:
    try:
        return NodeSettings.model_validate(data)
    except ValidationError as exc:
        fields = [_field_error(err) for err in exc.errors()]
        first_field, first_message = fields[0]
        raise SettingsRejected(f"invalid settings: {first_field}: {first_message}",
                               fields) from None


def _field_error(err: Any) -> tuple[str, str]:
    loc, message = field_named_in(tuple(err["loc"]), err["type"],
                                  err["msg"].removeprefix("Value error, "))
    return ".".join(str(p) for p in loc), message


def _merge_into(target: dict[str, Any], changes: dict[str, Any]) -> None:
    """Nested mappings are merged key by key, so their comments stay; anything else replaces.
    Inside a nested mapping None removes the key (its default applies again)."""
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
            for inner in [k for k, v in value.items() if v is None]:
                target[key].pop(inner, None)
        elif isinstance(value, dict):
            target[key] = {k: v for k, v in value.items() if v is not None}
        else:
            target[key] = value


def prepare(path: Path, changes: dict[str, Any]) -> tuple[str, NodeSettings]:
    """The new text and the settings it holds, validated as the node will read it; nothing is
    written. Blocking: call in a thread."""
    text = edited_text(path, changes)
    try:  # the same reader and limits as the node's start: what is saved, the node will load
        data = parse_yaml(text, path).data
    except YamlRefused as exc:
        raise SettingsRejected(str(exc), []) from None
    return text, validate(_mapping(data, path))


def commit(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600  # settings may name keys
    write_text_atomically(path, text, mode)


def update_file(path: Path, changes: dict[str, Any]) -> dict[str, Any]:
    """Returns the editable keys as the file now has them. The text to be written is validated
    as the node will read it, so what the console saves is what the node starts with.
    Blocking: call in a thread."""
    text, settings = prepare(path, changes)
    commit(path, text)
    return editable_values(settings)


def editable_values(settings: NodeSettings) -> dict[str, Any]:
    """The editable keys as the API shows them (sections as plain mappings)."""
    values: dict[str, Any] = {}
    for key in EDITABLE:
        value = getattr(settings, key)
        if hasattr(value, "model_dump"):
            value = value.model_dump(mode="json", exclude=NOT_EDITABLE.get(key, set()))
        values[key] = value
    return values


def editable_view(data: dict[str, Any]) -> dict[str, Any]:
    """The editable keys with the defaults filled in where the file does not set them."""
    return editable_values(validate({k: v for k, v in data.items() if k in EDITABLE}))
