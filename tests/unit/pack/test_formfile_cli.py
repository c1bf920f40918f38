"""`formation pack validate` and `formation kit init` through click's CliRunner (and once
through the real script: exit statuses and no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from formation.cli import cli
from formation.errors import FormationError
from formation.pack.formfile import load_formfile
from formation.pack.spec import Install

GOOD = """\
NAME web
CPU 2
MEMORY 1G
INSTALL curl
COPY site /srv/site/
ENTRYPOINT python3 -m http.server 8080
EXPOSE 8080
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("hi\n")
    (tmp_path / "Formfile").write_text(GOOD)
    return tmp_path


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input)


def test_validate_prints_how_the_formfile_was_read(project: Path) -> None:
    result = invoke("pack", "validate", str(project))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{project / 'Formfile'}: ok (build context {project})"
    assert "name         web" in lines
    assert "resources    2 vCPU, 1024 MiB memory, disk as built" in lines
    assert "  4  INSTALL curl" in lines
    assert "  5  COPY site -> /srv/site/" in lines
    assert "entrypoint   sh -c 'python3 -m http.server 8080'  (line 6)" in lines
    assert "expose       8080/tcp" in lines


def test_validate_json_is_the_spec(project: Path) -> None:
    result = invoke("pack", "validate", str(project / "Formfile"), "--json")
    assert result.exit_code == 0, result.output
    spec, _ = load_formfile(project)
    assert json.loads(result.stdout) == json.loads(json.dumps(spec.to_dict()))


def test_validate_reports_every_problem_with_its_place_and_exits_2(project: Path) -> None:
    (project / "Formfile").write_text("NAME web\nVCPU 0\nCOPY nowhere /x\nBOGUS\n")
    result = invoke("pack", "validate", str(project))
    assert result.exit_code == 2
    assert result.stdout == ""
    file = project / "Formfile"
    assert result.stderr.splitlines() == [
        f"{file}:2:6: VCPU: expected a whole number of vCPUs from 1 to 128, got '0'",
        f"{file}:3:6: COPY: expected a file or directory of the build context, got 'nowhere': "
        "no such file",
        f"{file}:4:1: unknown directive 'BOGUS': expected one of NAME, DESCRIPTION, FROM, VCPU, "
        "MEM, DISK, GPU, USER, RUN, COPY, INSTALL, ENV, WORKDIR, ENTRYPOINT, EXPOSE",
        f"3 problems in {file}"]


def test_validate_json_errors(project: Path) -> None:
    (project / "Formfile").write_text("NAME web\nEXPOSE 0\n")
    result = invoke("pack", "validate", str(project), "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {"file": str(project / "Formfile"), "problems": [
        {"line": 2, "column": 8, "message": "EXPOSE: expected a port from 1 to 65535, "
         "optionally with /tcp or /udp (8080, 53/udp), got '0'"}]}


def test_validate_without_a_formfile(tmp_path: Path) -> None:
    result = invoke("pack", "validate", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"cannot read {tmp_path / 'Formfile'}: No such file or directory",
        f"1 problem in {tmp_path / 'Formfile'}"]


def test_kit_init_with_flags_writes_a_formfile_that_validates(tmp_path: Path) -> None:
    target = tmp_path / "new app"
    result = invoke("kit", "init", str(target), "--name", "shop", "--vcpus", "4", "--memory",
                    "4096", "--disk", "30", "--install", "curl git", "--install", "nginx",
                    "--expose", "80,443", "--expose", "53/udp", "--yes")
    assert result.exit_code == 0, result.output
    spec, _ = load_formfile(target)
    assert (spec.name, spec.vcpus, spec.memory_mib, spec.disk_gb) == ("shop", 4, 4096, 30)
    assert spec.steps == (Install(line=13, packages=("curl", "git", "nginx")),)
    assert [(e.port, e.protocol) for e in spec.expose] == [(80, "tcp"), (443, "tcp"),
                                                          (53, "udp")]
    assert invoke("pack", "validate", str(target)).exit_code == 0


def test_kit_init_defaults_take_the_directory_name(tmp_path: Path) -> None:
    target = tmp_path / "My_Cool App"
    target.mkdir()
    result = invoke("kit", "init", str(target), "-y")
    assert result.exit_code == 0, result.output
    spec, _ = load_formfile(target)
    assert (spec.name, spec.vcpus, spec.memory_mib, spec.disk_gb, spec.steps, spec.expose) == (
        "my-cool-app", 1, 512, 5, (), ())


def test_kit_init_asks_and_asks_again_after_a_bad_answer(tmp_path: Path) -> None:
    answers = "\n".join(["Bad Name", "api", "0", "2", "", "10", "curl, jq", "8080"]) + "\n"
    result = invoke("kit", "init", str(tmp_path), input=answers)
    assert result.exit_code == 0, result.output
    assert "expected a name of lowercase letters" in result.output
    spec, _ = load_formfile(tmp_path)
    assert (spec.name, spec.vcpus, spec.memory_mib, spec.disk_gb) == ("api", 2, 512, 10)
    assert spec.steps == (Install(line=13, packages=("curl", "jq")),)
    assert [e.port for e in spec.expose] == [8080]


def test_kit_init_never_overwrites_without_force(project: Path) -> None:
    result = invoke("kit", "init", str(project), "--yes")
    assert result.exit_code == 1
    assert isinstance(result.exception, FormationError)
    assert "already exists" in str(result.exception)
    assert (project / "Formfile").read_text() == GOOD
    result = invoke("kit", "init", str(project), "--yes", "--force", "--name", "fresh")
    assert result.exit_code == 0, result.output
    assert load_formfile(project)[0].name == "fresh"


@pytest.mark.parametrize(("flag", "value"), [("--name", "Nope"), ("--vcpus", "0"),
                                             ("--memory", "100"), ("--install", "Bad,"),
                                             ("--expose", "99999")])
def test_kit_init_refuses_bad_flags(tmp_path: Path, flag: str, value: str) -> None:
    result = invoke("kit", "init", str(tmp_path), "--yes", flag, value)
    assert result.exit_code == 2
    assert flag.lstrip("-") in result.output.lower() or "invalid value" in result.output.lower()
    assert not (tmp_path / "Formfile").exists()


def test_the_script_exits_2_or_1_without_a_traceback(project: Path) -> None:
    (project / "Formfile").write_text("NAME web\nVCPU 0\n")
    done = subprocess.run([sys.executable, "-m", "formation", "pack", "validate", str(project)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and ":2:6: VCPU" in done.stderr
    done = subprocess.run([sys.executable, "-m", "formation", "kit", "init", str(project), "-y"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("formation: error: ") and "Traceback" not in done.stderr
