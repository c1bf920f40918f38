"""`formation console` reads its settings after the first frame (bench/tui.py cold_start_s);
a bad config file must still end it with the CLI's one-line error naming the key and line."""

from __future__ import annotations

from pathlib import Path

from console_harness import FORMATION, time_to_markers


def test_a_bad_config_file_ends_the_console_with_one_line(short_tmp: Path) -> None:
    config = short_tmp / "node.yaml"
    config.write_text(f"name: n1\ndata_dir: {short_tmp / 'data'}\nbogus: 1\n")
    found = time_to_markers([FORMATION, "--config", str(config), "console", "--no-embedded"],
                            [b"formation: error:", b"line 3: key 'bogus': unknown key"],
                            timeout_s=30)
    assert None not in found, found
