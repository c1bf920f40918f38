"""Fuzzed with hypothesis, the parser raises nothing but FormfileError: random text, random
bytes, lines built from the grammar's own words, and random mutations of a valid Formfile.
Every error it does raise locates its problems inside the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from formation.pack.formfile import FormfileError, load_formfile, parse_formfile
from formation.pack.formfile.table import ALIASES, DIRECTIVES
from formation.pack.spec import FormfileSpec

# Thousands of cases per test; on a loaded 2-core machine that can pass the suite's 120 s.
pytestmark = pytest.mark.timeout(400)

VALID = """\
# a workload
NAME web
DESCRIPTION "A small web app"
FROM debian:bookworm
VCPU 2
MEM 2G
DISK 20
GPU l4:2
USER username:app sudo:true groups:adm ssh_authorized_keys:"ssh-ed25519 AAAAC3Nz me@laptop"
INSTALL curl python3
WORKDIR /srv/app
COPY app /srv/app/
COPY app/main.py main.py
ENV --scope=service:web PORT=8080 GREETING="hi there"
RUN apt-get update && \\
    echo 'done' > /tmp/x
ENTRYPOINT ["python3", "main.py"]
EXPOSE 8080 53/udp
"""

# Characters that matter to the grammar, and some that should not but might.
SPECIAL = [*" \t\n\r\\\"'#[]{}:=,/.-_*$`;|&()<>", "\x00", "\x7f", "\ufeff", "\u2028", "é",
           "\u0661", "\U0001f600", ".."]
FUZZ = settings(max_examples=1500, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ctx")
    (root / "app").mkdir()
    (root / "app" / "main.py").write_text("print('hi')\n")
    (root / "out").symlink_to("/etc")
    return root


def check(text: str, context: Path | None) -> None:
    """Parse; anything but a spec or a FormfileError with located problems fails the test."""
    try:
        spec = parse_formfile(text, context)
    except FormfileError as exc:
        lines = text.count("\n") + 1
        assert exc.problems
        for problem in exc.problems:
            assert 0 <= problem.line <= lines and problem.column >= 0, problem
            assert 0 < len(problem.message) < 500, problem  # values are cut short
        assert str(exc)
        return
    assert isinstance(spec, FormfileSpec)
    json.dumps(spec.to_dict())


def test_the_valid_formfile_is_valid(context: Path) -> None:
    assert parse_formfile(VALID, context).name == "web"


@FUZZ
@given(text=st.text())
def test_random_text(text: str) -> None:
    check(text, None)


@FUZZ
@given(text=st.lists(st.sampled_from([*SPECIAL, "a", "A", "1", "NAME ", "RUN ", "COPY ",
                                      "USER ", "ENTRYPOINT ", "ENV "])).map("".join))
def test_random_text_of_the_grammars_characters(text: str) -> None:
    check(text, None)


WORDS = st.one_of(
    st.sampled_from(["", "0", "1", "128", "65536", "2G", "app", "a:b", "username:x",
                     "ssh_authorized_keys:", '"ssh-ed25519 AAAA k"', "--scope=user:x",
                     "--scope", "K=V", "=", "[", "]", '["a"]', '["a",', "'", '"', "\\", "/",
                     "..", "../x", "/etc/passwd", "app", "app/main.py", "out/passwd", "out",
                     "80/udp", "#", "l4:9", "debian:trixie", "lock_passwd:maybe"]),
    st.lists(st.sampled_from([*SPECIAL, *"abcXYZ019"]), max_size=12).map("".join),
)
DIRECTIVE_WORDS = st.sampled_from([*DIRECTIVES, *ALIASES, "name", "Run", "CMD", "BOGUS"])
LINE = st.builds(lambda d, ws, end: " ".join([d, *ws]) + end, DIRECTIVE_WORDS,
                 st.lists(WORDS, max_size=4), st.sampled_from(["", " ", " \\", "\t\r"]))


@settings(FUZZ, max_examples=800)
@given(lines=st.lists(LINE, max_size=10))
def test_lines_built_from_the_grammar(lines: list[str], context: Path) -> None:
    check("\n".join(lines), context)


MUTATION = st.tuples(st.sampled_from(["insert", "delete", "replace", "duplicate", "drop",
                                      "swap", "truncate"]),
                     st.integers(0, len(VALID)), st.integers(0, len(VALID)),
                     st.sampled_from([*SPECIAL, "x", "0", "NAME", "\n"]))


def mutate(text: str, mutations: list[tuple[str, int, int, str]]) -> str:
    for kind, at, other, char in mutations:
        at %= len(text) + 1
        lines = text.split("\n")
        index, second = at % len(lines), other % len(lines)
        if kind == "insert":
            text = text[:at] + char + text[at:]
        elif kind == "delete":
            text = text[:at] + text[at + 1:]
        elif kind == "replace":
            text = text[:at] + char + text[at + 1:]
        elif kind == "duplicate":
            text = "\n".join([*lines[:index], lines[index], *lines[index:]])
        elif kind == "drop":
            text = "\n".join(lines[:index] + lines[index + 1:])
        elif kind == "swap":
            lines[index], lines[second] = lines[second], lines[index]
            text = "\n".join(lines)
        else:
            text = text[:at]
        if not text:
            break
    return text


@FUZZ
@given(mutations=st.lists(MUTATION, min_size=1, max_size=8))
def test_mutations_of_a_valid_formfile(mutations: list[tuple[str, int, int, str]],
                                       context: Path) -> None:
    check(mutate(VALID, mutations), context)


@settings(max_examples=500, deadline=None)
@given(data=st.one_of(st.binary(max_size=2000),
                      st.builds(lambda m: mutate(VALID, m).encode("utf-8", "surrogatepass"),
                                st.lists(MUTATION, max_size=4))))
def test_random_bytes_from_a_file(data: bytes, context: Path) -> None:
    path = context / "Formfile"
    path.write_bytes(data)
    try:
        load_formfile(context)
    except FormfileError as exc:
        assert exc.problems
