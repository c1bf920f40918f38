"""The console's config-file edits: comments and spellings survive, and what is validated is the
text the node will read (YAML 1.1 through PyYAML, where `0660` is octal)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from formation.config.loader import load_settings
from formation.node.console_support.settings_file import SettingsRejected, update_file

APPLIANCE_LIKE = """\
# Formation node settings
data_dir: /var/lib/formation
api:
  socket: /run/formation/node.sock
  socket_mode: 0660    # octal: the formation group may connect
headless: false
"""


def test_octal_mode_and_comments_survive_a_top_level_edit(tmp_path: Path) -> None:
    config = tmp_path / "node.yaml"
    config.write_text(APPLIANCE_LIKE)
    view = update_file(config, {"name": "edge-01", "bootstrap": ["10.0.0.1:7170"]})
    text = config.read_text()
    assert "  socket_mode: 0660    # octal: the formation group may connect\n" in text
    assert text.startswith("# Formation node settings\n")
    assert view["name"] == "edge-01"
    assert yaml.safe_load(text)["api"]["socket_mode"] == 0o660


def test_nested_edit_keeps_sibling_keys_and_their_comments(tmp_path: Path) -> None:
    config = tmp_path / "node.yaml"
    config.write_text(APPLIANCE_LIKE)
    update_file(config, {"api": {"socket_group": "root"}})
    text = config.read_text()
    assert "socket_mode: 0660    # octal" in text and "socket_group: root" in text
    settings = load_settings(config)
    assert settings.api.socket_mode == 0o660 and settings.api.socket_group == "root"


def test_rejected_edit_names_the_field_and_leaves_the_file(tmp_path: Path) -> None:
    config = tmp_path / "node.yaml"
    config.write_text(APPLIANCE_LIKE)
    with pytest.raises(SettingsRejected) as caught:
        update_file(config, {"api": {"socket_mode": 0o7777}})
    assert "api.socket_mode" in str(caught.value)
    assert config.read_text() == APPLIANCE_LIKE


def test_an_edit_is_read_back_as_the_node_reads_it_at_start(tmp_path: Path) -> None:
    """ruamel keeps anchors and aliases unexpanded, so the text to be saved is checked by the
    node's own bounded reader: an alias bomb in the file is refused by its expansion, before
    anything expands it in memory, and the file is left as it was."""
    config = tmp_path / "node.yaml"
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, n in zip("abcd", "bcde", strict=True))
    config.write_text(APPLIANCE_LIKE + "labels:\n" + "".join(f"  {line}\n" for line in
                                                             bomb.splitlines()))
    before = config.read_text()
    with pytest.raises(SettingsRejected, match="alias"):
        update_file(config, {"name": "edge-01"})
    assert config.read_text() == before
