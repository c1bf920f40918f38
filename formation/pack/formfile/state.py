"""What the parser has gathered so far, and the one way to record a problem: handlers keep
going after a mistake, so a file's errors are all reported in one pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from formation.pack.formfile.errors import Problem
from formation.pack.formfile.lines import LogicalLine
from formation.pack.formfile.tokens import QuoteError, Word, split_words
from formation.pack.formfile.values import shown
from formation.pack.spec import Entrypoint, Expose, Gpu, Step


@dataclass(frozen=True)
class Directive:
    word: str  # the directive as written, upper-cased (messages use the user's alias)
    canonical: str  # the name the table knows it by (MEM for MEMORY and MBS)
    logical: LogicalLine
    args: int  # offset in logical.text where its arguments start

    @property
    def line(self) -> int:
        return self.logical.line

    @property
    def rest(self) -> str:
        """The arguments as written (quotes kept), without trailing blanks."""
        return self.logical.text[self.args:]

    @property
    def end(self) -> int:
        return len(self.logical.text)


@dataclass
class State:
    context: Path | None
    problems: list[Problem] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)  # single-use directive -> its line
    meta: dict[str, Any] = field(default_factory=dict)  # FormfileSpec fields set so far
    steps: list[Step] = field(default_factory=list)
    gpus: list[Gpu] = field(default_factory=list)
    expose: list[Expose] = field(default_factory=list)
    entrypoint: Entrypoint | None = None
    workdir: str = "/"  # where relative COPY destinations and WORKDIRs resolve
    users: dict[str, int] = field(default_factory=dict)  # username -> line

    def fail(self, d: Directive, offset: int, message: str) -> None:
        line, column = d.logical.where(offset)
        self.problems.append(Problem(line, column, f"{d.word}: {message}"))

    def once(self, d: Directive) -> bool:
        """True the first time a single-use directive appears, valid or not; a repeat is a
        problem (which of two VCPU lines was meant is not the parser's guess to make)."""
        first = self.seen.get(d.canonical)
        if first is not None:
            self.fail(d, 0, f"already set on line {first}: expected one {d.canonical} line")
            return False
        self.seen[d.canonical] = d.line
        return True

    def words(self, d: Directive) -> list[Word] | None:
        try:
            return split_words(d.logical.text, d.args)
        except QuoteError as exc:
            self.fail(d, exc.offset, str(exc))
            return None

    def one_word(self, d: Directive, expected: str) -> Word | None:
        """The directive's single argument, or None after recording what is wrong."""
        words = self.words(d)
        if words is None:
            return None
        if not words:
            self.fail(d, d.end, f"expected {expected}, got nothing")
            return None
        if len(words) > 1:
            extra = words[1]
            hint = " (comments go on a line of their own)" if extra.value.startswith("#") else ""
            self.fail(d, extra.offset,
                      f"expected only {expected}, got also {shown(extra.value)}{hint}")
            return None
        return words[0]
