"""Commands that change the node's config file (ssh-setup's api.socket_group): merge the keys
into the YAML, validate the whole file as the node would, and replace it atomically. The node
reads it at its next start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from formation.errors import FormationError


def set_config_keys(path: Path, changes: dict[str, Any]) -> None:
    from formation.node.console_support.settings_file import SettingsRejected, update_file

    try:
        update_file(path, changes)
    except SettingsRejected as exc:
        raise FormationError(f"{path}: {exc}") from None
    except OSError as exc:
        raise FormationError(f"{path}: cannot write: {exc.strerror}") from None
