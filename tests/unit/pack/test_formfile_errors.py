"""Each kind of mistake gets its own message at its own line and column, saying what was
expected; all the mistakes of a file come in one FormfileError."""

from __future__ import annotations

import pytest

from formation.errors import FormationError
from formation.pack.formfile import FormfileError, Problem, parse_formfile


def problems(text: str) -> list[Problem]:
    with pytest.raises(FormfileError) as caught:
        parse_formfile(text, None)
    return caught.value.problems


def only(body: str) -> Problem:
    """The one problem of NAME app + body (body starts on line 2)."""
    found = problems("NAME app\n" + body)
    assert len(found) == 1, found
    return found[0]


# (body from line 2, line, column, words the message must contain)
MISTAKES = [
    ("FOO bar\n", 2, 1, ["unknown directive 'FOO'", "expected one of NAME,"]),
    ("  VCUP 2\n", 2, 3, ["unknown directive 'VCUP'", "did you mean VCPU?"]),
    ("CMD [\"x\"]\n", 2, 1, ["CMD is a Dockerfile directive", "use ENTRYPOINT"]),
    ("VCPU\n", 2, 5, ["VCPU: expected a whole number of vCPUs from 1 to 128, got nothing"]),
    ("VCPU 0\n", 2, 6, ["VCPU: expected a whole number of vCPUs from 1 to 128, got '0'"]),
    ("CORES 129\n", 2, 7, ["CORES: expected", "got '129'"]),
    ("CPU two\n", 2, 5, ["CPU: expected", "got 'two'"]),
    ("VCPU 2 # two\n", 2, 8, ["expected only", "got also '#'", "comments go on a line"]),
    ("VCPU 1_0\n", 2, 6, ["got '1_0'"]),
    ("MEM 511\n", 2, 5, ["MEM: expected memory in MiB from 512 to 256000", "got '511'"]),
    ("MBS 300G\n", 2, 5, ["MBS: expected memory", "got '300G'"]),
    ("DISK 4\n", 2, 6, ["DISK: expected a disk size in GB from 5 to 65535, got '4'"]),
    ("STORAGE 65536\n", 2, 9, ["STORAGE: expected", "got '65536'"]),
    ("GPU a100:9\n", 2, 10, ["GPU: expected a GPU count from 1 to 8, got '9'"]),
    ("GPU :2\n", 2, 5, ["GPU: expected a GPU model", "got model ''"]),
    ("GPU l4\nGPU l4:2\n", 3, 5, ["l4 already asked for on line 2"]),
    ("NAME other\n", 2, 1, ["NAME: already set on line 1: expected one NAME line"]),
    ("VCPU 1\nCPU 2\n", 3, 1, ["CPU: already set on line 2: expected one VCPU line"]),
    ("FROM ubuntu:24.04\n", 2, 6, ["FROM: expected a Debian release: debian:bookworm",
                                   "got 'ubuntu:24.04'"]),
    ("FROM debian:stable\n", 2, 6, ["got 'debian:stable'"]),
    ("DESCRIPTION\n", 2, 12, ["DESCRIPTION: expected a description", "got nothing"]),
    ("DESCRIPTION \"a\" b\n", 2, 17, ["expected one quoted text"]),
    ("DESCRIPTION \"open\n", 2, 13, ["unterminated double quote", "expected a closing \""]),
    ("RUN\n", 2, 4, ["RUN: expected a command", "got nothing"]),
    ("RUN echo 'it\n", 2, 10, ["RUN: unterminated single quote", "expected a closing '"]),
    ('RUN ["echo", 1]\n', 2, 5, ["RUN: expected a JSON array of strings",
                                "got other values"]),
    ('ENTRYPOINT ["a" "b"]\n', 2, 17, ["ENTRYPOINT: expected a JSON array of strings",
                                       "Expecting ',' delimiter"]),
    ("ENTRYPOINT []\n", 2, 12, ["got no program to run"]),
    ('ENTRYPOINT ["bin/app"]\n', 2, 12, ["expected the program as an absolute path",
                                        "got 'bin/app'"]),
    ("ENTRYPOINT /a\nENTRYPOINT /b\n", 3, 1, ["ENTRYPOINT: already set on line 2"]),
    ("EXPOSE\n", 2, 7, ["EXPOSE: expected a port from 1 to 65535", "got nothing"]),
    ("EXPOSE 80 0\n", 2, 11, ["EXPOSE: expected a port", "got '0'"]),
    ("EXPOSE 80/sctp\n", 2, 8, ["got '80/sctp'"]),
    ("EXPOSE 80\nEXPOSE 80/tcp\n", 3, 8, ["80/tcp already exposed on line 2"]),
    ("INSTALL\n", 2, 8, ["INSTALL: expected Debian package names", "got nothing"]),
    ("INSTALL curl, git\n", 2, 9, ["expected a Debian package name", "got 'curl,'",
                                   "separate packages with spaces"]),
    ("INSTALL Curl\n", 2, 9, ["got 'Curl'"]),
    ("ENV\n", 2, 4, ["ENV: expected KEY=VALUE", "got nothing"]),
    ("ENV 1A=b\n", 2, 5, ["ENV: expected a variable name", "got '1A'"]),
    ("ENV A=1 B\n", 2, 9, ["ENV: expected KEY=VALUE", "got 'B'"]),
    ("ENV --scope=galaxy A=1\n", 2, 5, ["expected --scope=system", "got the scope 'galaxy'"]),
    ("ENV --scope=user:Bad A=1\n", 2, 5, ["got the scope 'user:Bad'"]),
    ("ENV --global A=1\n", 2, 5, ["got the option '--global'"]),
    ("ENV --scope\n", 2, 12, ["got no scope"]),
    ("WORKDIR\n", 2, 8, ["WORKDIR: expected a directory path, got nothing"]),
    ("WORKDIR /a /b\n", 2, 12, ["WORKDIR: expected only a directory path, got also '/b'"]),
    ("COPY a\n", 2, 7, ["COPY: expected a source in the build context and a destination",
                        "got only 'a'"]),
    ("COPY /etc/passwd /x\n", 2, 6, ["got the absolute path '/etc/passwd'"]),
    ("COPY ../secret /x\n", 2, 6, ["got '../secret', which leaves it"]),
    ("COPY a/../../b /x\n", 2, 6, ["which leaves it"]),
    ("COPY a b /dir\n", 2, 10, ["expected a directory ending in '/'", "got '/dir'"]),
    ("COPY --chown=app a /x\n", 2, 6, ["got the option '--chown=app'", "COPY takes none"]),
    ("USER\n", 2, 5, ["USER: expected username:NAME", "got nothing"]),
    ("USER sudo:true\n", 2, 6, ["expected username:NAME among the keys"]),
    ("USER app\n", 2, 6, ["USER: expected key:value", "got 'app'"]),
    ("USER username:app colour:blue\n", 2, 19, ["expected one of the keys", "got 'colour':"]),
    ("USER username:App\n", 2, 15, ["expected a Linux user name", "got 'App'"]),
    ("USER username:a username:b\n", 2, 17, ["username: given twice"]),
    ("USER username:a lock_passwd:maybe\n", 2, 29, ["lock_passwd: expected true or false",
                                                   "got 'maybe'"]),
    ("USER username:a shell:bash\n", 2, 23, ["shell: expected an absolute path"]),
    ("USER username:a groups:a,B\n", 2, 24, ["groups: expected group names"]),
    ("USER username:a passwd:\n", 2, 24, ["passwd: expected a value, got nothing"]),
    ("USER username:a ssh_authorized_keys:ssh-ed25519 AAAA\n", 2, 49,
     ["expected key:value", "got 'AAAA'", "quote a value with spaces"]),
    ("USER username:a ssh_authorized_keys:\"not a key\"\n", 2, 37,
     ["ssh_authorized_keys: expected a public key"]),
    ("USER username:a\nUSER username:a\n", 3, 6, ["user 'a' already defined on line 2"]),
    ("USER username:'a\n", 2, 15, ["unterminated single quote"]),
    ("RUN a \\\n\nVCPU 2\n", 2, 7, ["expected the line to continue after the trailing '\\'",
                                  "got a blank line"]),
    ("RUN a \\", 2, 7, ["got the end of the file"]),
    ("VCPU \x00\n", 2, 6, ["expected text, got the control character '\\x00'"]),
]


@pytest.mark.parametrize(("body", "line", "column", "words"), MISTAKES,
                         ids=[m[0].split("\n")[0][:30] for m in MISTAKES])
def test_each_mistake_names_its_line_column_and_what_was_expected(
        body: str, line: int, column: int, words: list[str]) -> None:
    problem = only(body)
    assert (problem.line, problem.column) == (line, column), problem
    for word in words:
        assert word in problem.message, problem


def test_the_messages_are_distinct() -> None:
    """Each kind of mistake has its own message (not one 'syntax error' for all)."""
    messages = [only(body).message for body, *_ in MISTAKES]
    assert len(set(messages)) == len(messages)


def test_name_is_required() -> None:
    assert problems("VCPU 2\n") == [
        Problem(1, 1, "NAME is required: expected a line like 'NAME my-app'")]
    assert [p.message for p in problems("")] == [
        "NAME is required: expected a line like 'NAME my-app'"]


def test_bad_name_is_reported_once_not_also_as_missing() -> None:
    assert [(p.line, p.column) for p in problems("NAME My_App\n")] == [(1, 6)]
    assert [(p.line, p.column) for p in problems("NAME\n")] == [(1, 5)]


def test_a_bad_repeat_is_reported_as_a_repeat() -> None:
    assert [p.message for p in problems("NAME a\nVCPU 2\nVCPU zero\n")] == [
        "VCPU: already set on line 2: expected one VCPU line"]


def test_every_problem_of_a_file_at_once_in_file_order() -> None:
    text = ("EXPOSE 99999\n"      # 1
            "NAME 9lives\n"       # 2
            "\n"
            "VCPU 999\n"          # 4
            "RUN echo \\\n"       # 5
            "  'open\n"           # 6: the quote opens on the continued line
            "BOGUS\n")            # 7
    found = problems(text)
    assert [(p.line, p.column) for p in found] == [(1, 8), (2, 6), (4, 6), (6, 3), (7, 1)]
    error = FormfileError(found)
    assert str(error).splitlines()[0].startswith("Formfile:1:8: EXPOSE: expected a port")
    assert len(str(error).splitlines()) == 5


def test_columns_inside_continued_lines_point_at_the_physical_line() -> None:
    found = problems("NAME app\nINSTALL curl \\\n    git \\\n    Bad_Pkg\n")
    assert [(p.line, p.column) for p in found] == [(4, 5)]


def test_the_error_is_a_formation_error_with_exit_status_2() -> None:
    with pytest.raises(FormationError) as caught:
        parse_formfile("VCPU 0", None)
    assert caught.value.exit_code == 2
    assert isinstance(caught.value, FormfileError)


def test_oversized_formfile_is_refused_whole() -> None:
    found = problems("NAME app\n" + "# padding\n" * 7000)
    message = f"the Formfile is too large: expected at most 65536 bytes, got {9 + 70000}"
    assert found == [Problem(0, 0, message)]
    assert str(FormfileError(found)) == f"Formfile: {message}"
