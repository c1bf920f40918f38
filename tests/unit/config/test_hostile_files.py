"""Hostile YAML in node.yaml and the enroll answer file: an alias bomb, deep nesting, invalid
UTF-8, duplicate keys, an oversized file and values Python cannot hold are each refused with the
file, the line and the reason, at the loader and through the real CLI (exit 2, one line on
stderr), and the CLI does so within a few hundred MB of address space."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from formation.config import load_settings
from formation.config.yaml_file import MAX_BYTES, MAX_DEPTH, MAX_VALUES, parse_yaml
from formation.enroll.answer_file import AnswerFileError, load_answer_file
from formation.errors import ConfigError

ADDRESS_SPACE = 400 << 20  # the CLI subprocesses run under this RLIMIT_AS
CLI_CASES = ["alias bomb", "deep nesting", "duplicate key", "invalid UTF-8"]  # the rest: loader


def alias_bomb(levels: int) -> str:
    """9**levels values from about 60 bytes a line: the "billion laughs" file."""
    lines = ["x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


# name -> (file content, its first key line for an answer file, the line named, the reason)
HOSTILE: dict[str, tuple[str | bytes, int, str]] = {
    # 9**6 = 531,441 values (in-process tests on code without the bound stay survivable;
    # the CLI tests use 9**9); line 5 (x4, 66,430 values) is the first past the bound
    "alias bomb": (alias_bomb(6), 5, f"aliases expand to more than {MAX_VALUES} values"),
    "deep nesting": ("x: " + "[" * 5000 + "]" * 5000 + "\n", 1, f"nested more than {MAX_DEPTH}"),
    "invalid UTF-8": (b"x: 1\ny: caf\xe9\n", 2, "not UTF-8 text (byte 0xe9)"),
    "duplicate key": ("x: 1\ny: 2\nx: 3\n", 3, "duplicate key 'x' (first at line 1, again at "
                      "line 3)"),
    "huge integer": ("x: " + "9" * 5000 + "\n", 1, "cannot read this value"),
    "impossible date": ("x: 2026-13-45\n", 1, "cannot read this value: month must be in"),
    "control character": ("x: 1\ny: \x07\n", 2, "character U+0007 is not allowed"),
    "self-holding alias": ("x: &a [1, *a]\n", 1, "an alias refers to a node that holds it"),
}


def hostile_file(tmp_path: Path, case: str, stem: str, bomb_levels: int = 6
                 ) -> tuple[Path, int, str]:
    content, line, reason = HOSTILE[case]
    if case == "alias bomb":
        content = alias_bomb(bomb_levels)
    path = tmp_path / f"{stem}.yaml"
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path, line, reason


def assert_names_file_line_reason(message: str, path: Path, line: int, reason: str) -> None:
    assert "\n" not in message.strip(), message
    assert f"{path}: line {line}" in message, message
    assert reason in message, message


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_the_config_loader_refuses_with_file_line_and_reason(tmp_path: Path, case: str) -> None:
    path, line, reason = hostile_file(tmp_path, case, "node")
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as info:
            load_settings(path, environ={})
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_names_file_line_reason(str(info.value), path, line, reason)
    assert peak < 64 << 20, f"reading {case} took {peak >> 20} MB"


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_the_answer_file_refuses_with_file_line_and_reason(tmp_path: Path, case: str) -> None:
    path, line, reason = hostile_file(tmp_path, case, "enroll")
    with pytest.raises(AnswerFileError) as info:
        load_answer_file(path)
    assert info.value.problems and len(info.value.problems) == 1
    assert_names_file_line_reason(info.value.problems[0], path, line, reason)


def test_duplicate_keys_nested_in_the_answer_file_name_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "enroll.yaml"
    path.write_text("version: 1\nnetwork:\n  found:\n    name: lab\n    name: lab2\n")
    with pytest.raises(AnswerFileError) as info:
        load_answer_file(path)
    assert_names_file_line_reason(str(info.value), path, 5,
                                  "duplicate key 'name' (first at line 4, again at line 5)")


def test_an_oversized_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    with path.open("wb") as out:
        out.write(b"name: edge1\n# ")
        out.truncate(64 << 20)  # sparse: 64 MB of NULs after a comment
    with pytest.raises(ConfigError, match=rf"{path}: larger than {MAX_BYTES} bytes"):
        load_settings(path, environ={})
    with pytest.raises(AnswerFileError, match=rf"{path}: larger than {MAX_BYTES} bytes"):
        load_answer_file(path)


def test_many_values_are_refused_at_the_bound_while_composing() -> None:
    text = "x: [" + ", ".join(["1"] * (MAX_VALUES + 10)) + "]\n"
    with pytest.raises(Exception, match=f"more than {MAX_VALUES} values"):
        parse_yaml(text, "F")


def test_aliases_within_the_bound_and_merge_keys_still_work(tmp_path: Path) -> None:
    """Anchors are ordinary YAML and stay usable; only their expansion is bounded."""
    document = parse_yaml("base: &b {cpus: 2}\nnode:\n  <<: *b\n  memory_mb: 512\n"
                          "copy: *b\n", "F")
    assert document.data == {"base": {"cpus": 2}, "node": {"cpus": 2, "memory_mb": 512},
                             "copy": {"cpus": 2}}
    assert document.lines[("node", "memory_mb")] == 4
    path = tmp_path / "node.yaml"
    path.write_text("bootstrap: &peers ['a.example:7170']\nstate:\n  peers: []\n"
                    "name: edge1\n")
    assert load_settings(path, environ={}).name == "edge1"


def test_a_hostile_environment_value_stays_a_string(tmp_path: Path) -> None:
    """FORMATION_* values are parsed as YAML too: one that is not plain YAML is taken as text,
    not allowed to crash or exhaust the loader."""
    deep = "[" * 5000 + "]" * 5000
    with pytest.raises(ConfigError, match="environment FORMATION_NAME"):
        load_settings(None, environ={"FORMATION_DATA_DIR": str(tmp_path),
                                     "FORMATION_NAME": deep})


# through the CLI, as an operator (or a provisioning script) runs it ----------------------------

def _limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m formation ARGS` under RLIMIT_AS. XDG paths, the data directory and the socket
    are in tmp_path, so a node that wrongly starts stays there (and is killed by the timeout)."""
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_RUNTIME_DIR": str(tmp_path / "run"),
           "FORMATION_DATA_DIR": str(tmp_path / "data"),
           "FORMATION_API__SOCKET": str(tmp_path / "node.sock")}
    env.pop("FORMATION_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "formation", *args], capture_output=True,
                          text=True, timeout=60, env=env, preexec_fn=_limit_address_space)


def test_the_cli_runs_within_the_address_space_limit(tmp_path: Path) -> None:
    """The control for the tests below: under the same limit, an ordinary mistake is reported
    by the loader (so a refusal below is not the limit's doing)."""
    path = tmp_path / "node.yaml"
    path.write_text("name: Not_A_Host\n")
    done = run_cli(tmp_path, "--config", str(path), "node")
    assert done.returncode == 2, done.stderr
    assert f"{path}: line 1: key 'name'" in done.stderr


@pytest.mark.parametrize("case", CLI_CASES)
def test_formation_node_exits_2_naming_the_file_line_and_reason(tmp_path: Path,
                                                               case: str) -> None:
    path, line, reason = hostile_file(tmp_path, case, "node", bomb_levels=9)
    done = run_cli(tmp_path, "--config", str(path), "node")
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert_names_file_line_reason(done.stderr, path, line, reason)
    assert not (tmp_path / "data").exists(), "the node started"


@pytest.mark.parametrize("case", CLI_CASES)
def test_enroll_check_exits_2_naming_the_file_line_and_reason(tmp_path: Path, case: str) -> None:
    path, line, reason = hostile_file(tmp_path, case, "enroll", bomb_levels=9)
    done = run_cli(tmp_path, "enroll", "--answer-file", str(path), "--check")
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert_names_file_line_reason(done.stderr, path, line, reason)
