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

from formation.config.settings import NodeSettings
from formation.fileutil import write_text_atomically

if TYPE_CHECKING:
    from ruamel.yaml import YAML

EDITABLE = ("name", "bootstrap", "admin_ssh_keys")


class SettingsRejected(ValueError):
    def __init__(self, message: str, fields: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.fields = fields


def _round_trip() -> YAML:
    # ruamel.yaml is imported on the first edit, not with the node: it is not needed to boot.
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def read_file(path: Path) -> dict[str, Any]:
    """The file as a comment-keeping mapping (a dict subclass), or {} when there is none."""
    if not path.exists():
        return {}
    from ruamel.yaml.error import YAMLError

    try:
        data = _round_trip().load(path.read_text())
    except YAMLError as exc:
        raise SettingsRejected(f"{path}: not valid YAML: {exc}", []) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsRejected(f"{path}: expected a mapping of settings", [])
    return data


def plain(value: Any) -> Any:
    """ruamel's mappings, sequences and scalar strings as built-in types, for validation."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def validate(data: dict[str, Any]) -> NodeSettings:
    try:
        return NodeSettings.model_validate(plain(data))
    except ValidationError as exc:
        fields = [(".".join(str(p) for p in err["loc"]),
                   err["msg"].removeprefix("Value error, ")) for err in exc.errors()]
        first_field, first_message = fields[0]
        raise SettingsRejected(f"invalid settings: {first_field}: {first_message}",
                               fields) from None


def write_atomically(path: Path, data: dict[str, Any]) -> None:
    """Keeps the file's mode (0600 for a new one: settings may name keys)."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    buffer = io.StringIO()
    _round_trip().dump(data, buffer)
    write_text_atomically(path, buffer.getvalue(), mode)


def update_file(path: Path, changes: dict[str, Any]) -> dict[str, Any]:
    """Returns the editable keys as the file now has them. Blocking: call in a thread."""
    data = read_file(path)
    data.update(changes)
    validate(data)
    write_atomically(path, data)
    return editable_view(data)


def editable_view(data: dict[str, Any]) -> dict[str, Any]:
    """The editable keys with the defaults filled in where the file does not set them."""
    settings = validate({k: plain(v) for k, v in data.items() if k in EDITABLE})
    return {key: getattr(settings, key) for key in EDITABLE}
