"""`formation enroll` as a person runs it: exit codes and messages, in a real subprocess."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def run_enroll(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "formation", "enroll", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def valid_answer(tmp_path: Path) -> Path:
    if not shutil.which("ssh-keygen"):
        pytest.skip("ssh-keygen (openssh-client) is not installed")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")],
                   check=True)
    key = (tmp_path / "id.pub").read_text().strip()
    path = tmp_path / "enroll.yaml"
    path.write_text(f"version: 1\nhostname: edge-01\nnetwork:\n  found:\n    name: lab\n"
                    f"admin_keys:\n  - {key}\n")
    return path


def test_check_of_a_valid_file_exits_zero(valid_answer: Path) -> None:
    done = run_enroll("--answer-file", str(valid_answer), "--check")
    assert done.returncode == 0, done.stderr
    assert "valid: edge-01 will found network 'lab' with 1 admin key(s)" in done.stdout


def test_check_json_prints_the_parsed_file(valid_answer: Path) -> None:
    done = run_enroll("--answer-file", str(valid_answer), "--check", "--json")
    assert done.returncode == 0, done.stderr
    assert '"name": "lab"' in done.stdout and '"hostname": "edge-01"' in done.stdout


def test_enrolling_says_it_is_not_available_yet(valid_answer: Path) -> None:
    done = run_enroll("--answer-file", str(valid_answer))
    assert done.returncode == 3
    assert "enrolment not yet available: founding a network needs the state store" in done.stderr
    assert "Traceback" not in done.stderr


def test_invalid_file_lists_every_problem_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "enroll.yaml"
    path.write_text("version: 1\nhostname: NOPE\nnetwork:\n  join: {}\n")
    done = run_enroll("--answer-file", str(path), "--check")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[0] == (f"error: {path}: line 2: hostname: expected a hostname: "
                        "lowercase letters, digits and '-', at most 63")
    assert lines[1].startswith(f"error: {path}: line 4: network.join: joining needs 'invite'")
    assert "Traceback" not in done.stderr
