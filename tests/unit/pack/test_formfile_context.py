"""COPY sources are checked against a real build context on disk: they must exist and stay in
it, through '..', absolute paths and symlinks (a Formfile from someone else must not copy your
~/.ssh into an image). load_formfile finds the Formfile and reads it defensively."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from formation.pack.formfile import FormfileError, Problem, load_formfile, parse_formfile
from formation.pack.spec import Copy


@pytest.fixture
def context(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "app" / "static").mkdir(parents=True)
    (root / "app" / "main.py").write_text("print('hi')\n")
    (root / "app" / "static" / "index.html").write_text("<p>hi</p>\n")
    (root / "app" / "link-inside").symlink_to("main.py")
    (tmp_path / "secret").write_text("outside\n")
    return root


def copy_problems(context: Path, line: str) -> list[str]:
    with pytest.raises(FormfileError) as caught:
        parse_formfile(f"NAME app\n{line}\n", context)
    return [p.message for p in caught.value.problems]


def test_sources_in_the_context_are_accepted(context: Path) -> None:
    spec = parse_formfile("NAME app\nCOPY app/main.py /srv/\nCOPY app /srv/app\n"
                          "COPY ./app/link-inside /srv/x\nCOPY . /ctx/\n", context)
    assert [s.src for s in spec.steps if isinstance(s, Copy)] == [
        "app/main.py", "app", "app/link-inside", "."]


def test_missing_source_is_named(context: Path) -> None:
    assert copy_problems(context, "COPY app/mian.py /srv/") == [
        "COPY: expected a file or directory of the build context, got 'app/mian.py': "
        "no such file"]


def test_symlink_out_of_the_context_is_refused(context: Path) -> None:
    (context / "escape").symlink_to(context.parent / "secret")
    (context / "dir-escape").symlink_to(context.parent)
    assert copy_problems(context, "COPY escape /x") == [
        "COPY: expected a path inside the build context, got 'escape': a symlink out of it"]
    assert copy_problems(context, "COPY dir-escape/secret /x") == [
        "COPY: expected a path inside the build context, got 'dir-escape/secret': a symlink "
        "out of it"]


def test_directory_holding_a_symlink_out_is_refused(context: Path) -> None:
    (context / "app" / "static" / "passwd").symlink_to("/etc/passwd")
    assert copy_problems(context, "COPY app /srv/app") == [
        "COPY: expected a directory whose symlinks stay in the build context, got 'app': "
        "app/static/passwd leads out of it"]


def test_dotdot_that_stays_inside_is_fine_and_one_that_leaves_is_not(context: Path) -> None:
    spec = parse_formfile("NAME app\nCOPY app/static/../main.py /x\n", context)
    assert spec.steps == (Copy(line=2, src="app/main.py", dst="/x"),)
    assert copy_problems(context, "COPY app/../../secret /x") == [
        "COPY: expected a path inside the build context, got 'app/../../secret', which "
        "leaves it"]


def test_symlink_loop_is_a_problem_not_a_crash(context: Path) -> None:
    (context / "loop").symlink_to("loop")
    [message] = copy_problems(context, "COPY loop /x")
    assert message.startswith("COPY: expected")


def test_each_bad_source_of_one_line_is_reported(context: Path) -> None:
    with pytest.raises(FormfileError) as caught:
        parse_formfile("NAME app\nCOPY nope /etc/x ../y /dst/\n", context)
    assert [(p.line, p.column) for p in caught.value.problems] == [(2, 6), (2, 11), (2, 18)]


def test_load_formfile_from_a_directory_or_a_file(context: Path) -> None:
    (context / "Formfile").write_text("NAME app\nCOPY app /srv/app\n")
    (context / "other.formfile").write_text("NAME other\n")
    spec, found = load_formfile(context)
    assert (spec.name, found) == ("app", context)
    assert spec.source == "NAME app\nCOPY app /srv/app\n"
    spec, found = load_formfile(context / "other.formfile")
    assert (spec.name, found) == ("other", context)


def test_load_formfile_checks_the_context_of_the_file(context: Path) -> None:
    (context / "Formfile").write_text("NAME app\nCOPY missing /x\n")
    with pytest.raises(FormfileError) as caught:
        load_formfile(context)
    assert [(p.line, p.column) for p in caught.value.problems] == [(2, 6)]


def test_load_formfile_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FormfileError) as caught:
        load_formfile(tmp_path)
    [problem] = caught.value.problems
    assert problem.line == 0
    assert problem.message == f"cannot read {tmp_path / 'Formfile'}: No such file or directory"


def test_load_formfile_names_the_byte_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "Formfile").write_bytes(b"NAME app\nDESCRIPTION caf\xe9\n")
    with pytest.raises(FormfileError) as caught:
        load_formfile(tmp_path)
    assert caught.value.problems == [Problem(2, 16, "expected UTF-8 text, got the byte 0xe9")]


def test_load_formfile_refuses_a_huge_file_without_reading_it_all(tmp_path: Path) -> None:
    with (tmp_path / "Formfile").open("wb") as out:
        out.truncate(1 << 30)  # sparse: 1 GiB of NULs
    with pytest.raises(FormfileError) as caught:
        load_formfile(tmp_path)
    assert caught.value.problems == [
        Problem(0, 0, f"{tmp_path / 'Formfile'} is too large: expected at most 65536 bytes")]


def test_load_formfile_path_with_a_nul(tmp_path: Path) -> None:
    with pytest.raises(FormfileError) as caught:
        load_formfile(tmp_path / "bad\0name")
    assert caught.value.problems[0].message.endswith("embedded null byte")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_load_formfile_unreadable(tmp_path: Path) -> None:
    (tmp_path / "Formfile").write_text("NAME app\n")
    (tmp_path / "Formfile").chmod(0)
    with pytest.raises(FormfileError) as caught:
        load_formfile(tmp_path)
    assert caught.value.problems[0].message.endswith("Permission denied")
