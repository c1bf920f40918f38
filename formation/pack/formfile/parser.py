"""parse_formfile and load_formfile: text to FormfileSpec, or a FormfileError holding every
problem of the file. Only FormfileError ever escapes (a hypothesis fuzz test holds us to it)."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from formation.pack.formfile.errors import FormfileError, Problem
from formation.pack.formfile.lines import BLANK, Dangling, LogicalLine, logical_lines
from formation.pack.formfile.state import Directive, State
from formation.pack.formfile.table import (
    ALIASES,
    DIRECTIVES,
    EXPECTED,
    FROM_DOCKERFILES,
    canonical,
)
from formation.pack.formfile.values import shown
from formation.pack.spec import FormfileSpec

FILENAME = "Formfile"
# The Formfile travels in the image.add op that records a build, which bounds it; no real
# Formfile comes near it.
MAX_BYTES = 64 * 1024
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # all but tab and newline


def parse_formfile(text: str, context: Path | None = None) -> FormfileSpec:
    """The spec of a Formfile's text. context is the build context directory: COPY sources must
    exist in it and resolve inside it; None checks only their shape (validating text alone)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise FormfileError([Problem(0, 0, f"the Formfile is too large: expected at most "
                                     f"{MAX_BYTES} bytes, got {size}")])
    state = State(context=context)
    garbled = _check_characters(text, state)
    for item in logical_lines(text):
        if isinstance(item, LogicalLine) and any(p[1] in garbled for p in item.pieces):
            continue  # its problem is reported; what its words would say adds nothing
        if isinstance(item, Dangling):
            got = "the end of the file" if item.at_end else "a blank line"
            state.problems.append(Problem(item.line, item.column, "expected the line to "
                                          f"continue after the trailing '\\', got {got}"))
        else:
            _directive(state, item)
    if "name" not in state.meta and "NAME" not in state.seen:
        state.problems.append(Problem(1, 1, "NAME is required: expected a line like "
                                      "'NAME my-app'"))
    if state.problems:
        raise FormfileError(state.problems)
    return FormfileSpec(**state.meta, gpus=tuple(state.gpus), steps=tuple(state.steps),
                        entrypoint=state.entrypoint, expose=tuple(state.expose), source=text)


def _check_characters(text: str, state: State) -> set[int]:
    """Control characters other than tab (and \\r at line ends) are never meant: a NUL would cut
    a shell command short. One problem per line that has them; returns those lines."""
    garbled: set[int] = set()
    if not CONTROL.search(text.replace("\r\n", "\n")):
        return garbled
    for number, line in enumerate(text.split("\n"), 1):
        body = line.rstrip("\r")
        bad = next((i for i, c in enumerate(body) if (c < " " and c != "\t") or c == "\x7f"),
                   None)
        if bad is not None:
            state.problems.append(Problem(number, bad + 1, f"expected text, got the control "
                                          f"character {shown(body[bad])}"))
            garbled.add(number)
    return garbled


def _directive(state: State, logical: LogicalLine) -> None:
    text = logical.text
    end = next((i for i, c in enumerate(text) if c in BLANK), len(text))
    word = text[:end]
    args = end
    while args < len(text) and text[args] in BLANK:
        args += 1
    name = canonical(word)
    if name is None:
        line, column = logical.where(0)
        state.problems.append(Problem(line, column, _unknown(word)))
        return
    DIRECTIVES[name](state, Directive(word.upper(), name, logical, args))


def _unknown(word: str) -> str:
    upper = word.upper()
    if upper in FROM_DOCKERFILES:
        return f"{upper} is a Dockerfile directive, not a Formfile one: {FROM_DOCKERFILES[upper]}"
    near = difflib.get_close_matches(upper, [*DIRECTIVES, *ALIASES], n=1, cutoff=0.75)
    hint = f" (did you mean {near[0]}?)" if near else ""
    return f"unknown directive {shown(word)}{hint}: expected one of {EXPECTED}"


def load_formfile(path: Path) -> tuple[FormfileSpec, Path]:
    """The spec of path (a Formfile, or a directory holding one named Formfile) and its build
    context (the directory the Formfile is in)."""
    file = path / FILENAME if path.is_dir() else path
    context = file.parent
    try:
        with file.open("rb") as stream:
            data = stream.read(MAX_BYTES + 1)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        reason = getattr(exc, "strerror", None) or str(exc)
        raise FormfileError([Problem(0, 0, f"cannot read {file}: {reason}")]) from None
    if len(data) > MAX_BYTES:
        raise FormfileError([Problem(0, 0, f"{file} is too large: expected at most "
                                     f"{MAX_BYTES} bytes")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise FormfileError([Problem(line, column, "expected UTF-8 text, got the byte "
                                     f"0x{data[exc.start]:02x}")]) from None
    return parse_formfile(text, context), context
