"""Serial output shown in the console's own terminal: a guest's colours, cursor moves and
window titles must not reach it; lines and tabs stay."""

from __future__ import annotations

from formation.tui.screens.instance_detail import clean_serial


def test_control_sequences_are_removed_and_lines_kept() -> None:
    raw = "\x1b[1;32mOK\x1b[0m boot\r\n\x1b]0;title\x07login:\tok\x1b[2J\x07\x00\n"
    assert clean_serial(raw) == "OK boot\nlogin:\tok\n"


def test_plain_text_is_unchanged() -> None:
    assert clean_serial("FORMATION-GUEST-READY\n") == "FORMATION-GUEST-READY\n"
