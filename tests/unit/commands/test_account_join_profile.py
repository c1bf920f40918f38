"""`formation account join` saves a profile beside the ones already in client.yaml: the first
becomes the default, a later one does not take the default from another, and a file that is
not a profile map is left alone with one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from formation.commands.account import AccountError
from formation.commands.account_invite import _save_profile


def test_a_profile_is_added_and_the_default_kept(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    path, default = _save_profile("alice", "192.0.2.10:7701", tmp_path / "a.key")
    assert default is True and path == tmp_path / "formation" / "client.yaml"
    path, default = _save_profile("bob", "192.0.2.11:7701", tmp_path / "b.key")
    assert default is False
    data = yaml.safe_load(path.read_text())
    assert data["default"] == "alice"
    assert data["profiles"]["bob"] == {"node": "192.0.2.11:7701", "key": str(tmp_path / "b.key")}


def test_a_file_that_is_no_profile_map_is_left_alone(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    path = tmp_path / "formation" / "client.yaml"
    path.parent.mkdir()
    path.write_text("- a list\n")
    with pytest.raises(AccountError, match="no profile was saved") as caught:
        _save_profile("alice", "192.0.2.10:7701", tmp_path / "a.key")
    assert "\n" not in str(caught.value)
    assert path.read_text() == "- a list\n"
