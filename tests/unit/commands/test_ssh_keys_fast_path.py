"""sshd runs `formation ssh-keys --socket S --console-user C USER` twice per login: that form
goes through formation.launcher to the standard-library path, without click, pydantic or the
command table; every other form (help, no --socket, a typo) still reaches click and its usual
messages. The keys themselves are checked against a real node in
tests/unit/node/console_support/test_ssh_access.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from formation.commands.authorized_keys import authorized_keys_text, parse_fast_args


@pytest.mark.parametrize(("argv", "parsed"), [
    (["ssh-keys", "--socket", "/s", "--console-user", "c", "u"], ("/s", "c", "u")),
    (["--config", "/etc/f.yaml", "ssh-keys", "--socket=/s", "u"], ("/s", "formation", "u")),
    (["ssh-keys", "u", "--console-user=c", "--socket", "/s"], ("/s", "c", "u")),
])
def test_the_drop_in_forms_take_the_fast_path(argv, parsed) -> None:
    assert parse_fast_args(argv) == parsed


@pytest.mark.parametrize("argv", [
    ["ssh-keys", "u"],  # no --socket: the settings say where the socket is
    ["ssh-keys", "--help"],
    ["ssh-keys", "--socket", "/s", "--bogus", "u"],
    ["ssh-keys", "--socket", "/s"],  # no user
    ["ssh-keys", "--socket", "/s", "u", "v"],
    ["ssh-keys", "--socket", "/s", "--socket", "/t", "u"],
    ["ssh-keys", "--config", "/f", "--socket", "/s", "u"],  # --config belongs before ssh-keys
    ["--socket", "/s", "ssh-keys", "u"],
    ["version", "ssh-keys"],
])
def test_any_other_form_goes_to_click(argv) -> None:
    assert parse_fast_args(argv) is None


def test_a_line_with_a_newline_is_dropped_whole() -> None:
    assert authorized_keys_text(["ssh-ed25519 AAAA a", "x\ncommand=\"sh\" ssh-ed25519 B", ""]) \
        == "ssh-ed25519 AAAA a\n"


def _run_and_list_modules(args: list[str]) -> tuple[int, str, set[str]]:
    code = ("import atexit, json, sys\n"
            "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))\n"
            f"sys.argv = ['formation', *{args!r}]\n"
            "from formation.launcher import main\nmain()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    *message, modules = done.stderr.splitlines()
    return done.returncode, "\n".join(message), set(json.loads(modules))


def test_the_fast_path_loads_no_click(short_tmp: Path) -> None:
    socket = str(short_tmp / "none.sock")
    code, message, modules = _run_and_list_modules(
        ["--config", "/nonexistent.yaml", "ssh-keys", "--socket", socket, "formation"])
    assert code == 1
    assert message == f"formation: error: no node service answers on {socket}: " \
        "No such file or directory"
    assert not {m for m in modules if m.split(".")[0] in ("click", "pathlib")}
    assert "formation.cli" not in modules
    code, message, modules = _run_and_list_modules(["ssh-keys", "--socket", socket, "other"])
    assert (code, message) == (0, "")  # another user: no keys, and the node is not even asked


def test_other_forms_still_get_clicks_messages() -> None:
    code, message, modules = _run_and_list_modules(["ssh-keys", "--socket", "/s", "--bogus", "u"])
    assert code == 2 and "No such option '--bogus'" in message
    assert "click" in modules
