"""A bad config file ends `formation console` with the CLI's one-line error naming the file, the
line and the key, before anything is drawn: no alternate screen, no title bar. (The console
reads its settings after its first frame; formation/commands/config_check.py checks them in a
forked child before it starts.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.support.processes import FORMATION, run_on_pty

ALTERNATE_SCREEN = b"\x1b[?1049h"


@pytest.mark.parametrize(("text", "expected"), [
    ("name: n1\ndata_dir: {data}\nbogus: 1\n", "line 3: key 'bogus': unknown key"),
    ("name: n1\ndata_dir: {data}\napi:\n  listen: [1, 2\n", "invalid YAML"),
    ("name: n1\ndata_dir: {data}\napi:\n  listen: not-an-address\n", "line 4: key 'api.listen'"),
])
def test_a_bad_config_file_ends_the_console_before_its_first_frame(
        short_tmp: Path, text: str, expected: str) -> None:
    config = short_tmp / "node.yaml"
    config.write_text(text.format(data=short_tmp / "data"))
    code, output = run_on_pty([FORMATION, "--config", str(config), "console", "--no-embedded"])
    shown = output.decode(errors="replace")
    assert code == 2, shown
    assert ALTERNATE_SCREEN not in output and "Formation" not in shown, shown
    line = shown.strip()
    assert line.startswith(f"formation: error: {config}: ") and expected in line, line
    assert len(line.splitlines()) == 1, line


def test_a_missing_config_file_too(short_tmp: Path) -> None:
    missing = short_tmp / "none.yaml"
    code, output = run_on_pty([FORMATION, "--config", str(missing), "console"])
    assert (code, output.decode().strip()) == (
        2, f"formation: error: {missing}: no such config file")
