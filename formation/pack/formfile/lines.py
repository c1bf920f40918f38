"""From text to logical lines: one directive each, with comments and blank lines dropped and
backslash continuations joined, and for every character of a joined line the physical line and
column it came from, so an error deep in a continued RUN still points at the right spot."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

BLANK = " \t"  # what separates words; every other character belongs to a word
TRAILING = " \t\r"  # tolerated at the end of a line (\r: files written on Windows)


@dataclass(frozen=True)
class LogicalLine:
    """A directive's text. `pieces` maps offsets in `text` to where they were written:
    (offset, line, column) of each physical line's contribution, in order."""

    text: str
    pieces: tuple[tuple[int, int, int], ...]

    @property
    def line(self) -> int:
        return self.pieces[0][1]

    def where(self, offset: int) -> tuple[int, int]:
        """The (line, column) of offset in `text`; the end of the text is just past its last
        character, where a missing argument would have gone."""
        index = max(bisect_right([piece[0] for piece in self.pieces], offset) - 1, 0)
        start, line, column = self.pieces[index]
        return line, column + offset - start


@dataclass(frozen=True)
class Dangling:
    """A trailing backslash followed by a blank line or the end of the file: the continuation
    it promises never comes."""

    line: int
    column: int
    at_end: bool  # the end of the file, not a blank line


def logical_lines(text: str) -> Iterator[LogicalLine | Dangling]:
    """Comments are lines whose first non-blank character is '#' (a '#' later in a line is
    text: shell commands and URLs contain it). A line ending in '\\' continues on the next;
    comment lines inside a continuation are skipped (as Dockerfiles do). A continuation into a
    blank line or the end of the file is a mistake (a Dangling, reported), and the line ends
    there, so a stray backslash cannot swallow the directive after a paragraph break."""
    if text.startswith("\ufeff"):
        text = text[1:]
    pieces: list[tuple[int, int, int]] = []
    parts: list[str] = []
    length = 0
    last = (1, 1)
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip(TRAILING)
        stripped = line.lstrip(BLANK)
        if pieces and stripped.startswith("#"):
            continue
        if not stripped or (not pieces and stripped.startswith("#")):
            if pieces:
                yield Dangling(*last, at_end=False)
                yield LogicalLine("".join(parts), tuple(pieces))
                pieces, parts, length = [], [], 0
            continue
        indent = len(line) - len(stripped) if not pieces else 0
        body = line[indent:]
        continued = body.endswith("\\")
        if continued:
            body = body[:-1]
            last = (number, len(line))
        pieces.append((length, number, indent + 1))
        parts.append(body)
        length += len(body)
        if not continued:
            yield LogicalLine("".join(parts), tuple(pieces))
            pieces, parts, length = [], [], 0
    if pieces:
        yield Dangling(*last, at_end=True)
        yield LogicalLine("".join(parts), tuple(pieces))
