"""The console's first frame pays only for Textual and the dashboard: importing the app (as
`formation console` does before it draws) loads no API models, HTTP client, YAML or PyNaCl, and
no other screen. Those load in a thread once the frame is drawn. Checked in a fresh
interpreter, so nothing imported by the test session hides an import."""

from __future__ import annotations

import json
import subprocess
import sys

from formation.tui.app import AFTER_FIRST_FRAME, LATER, LAZY_SCREENS, FormationApp

NOT_FOR_THE_FIRST_FRAME = ("pydantic", "aiohttp", "nacl", "yaml", "zeroconf", "pyroute2")


def loaded_after(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", code + "\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_the_app_module_loads_only_what_the_first_frame_needs() -> None:
    loaded = loaded_after("import formation.commands.console, formation.tui.app")
    assert "textual.app" in loaded and "formation.tui.screens.dashboard" in loaded
    assert sorted(m for m in loaded if m.split(".")[0] in NOT_FOR_THE_FIRST_FRAME) == []
    assert sorted(m for m in loaded if m.startswith("formation.api")) == []
    assert sorted(loaded & {*AFTER_FIRST_FRAME, *LATER}) == []


def test_every_lazy_screen_exists_and_is_a_mode() -> None:
    import importlib

    for mode, (module, name) in LAZY_SCREENS.items():
        assert mode in FormationApp.MODES
        assert isinstance(getattr(importlib.import_module(module), name), type)
