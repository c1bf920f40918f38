"""Words of a directive's arguments with POSIX shell quoting (shlex does the quoting), each
with the offset it starts at, so a bad value can be pointed at."""

from __future__ import annotations

import io
import re
import shlex
from dataclasses import dataclass

from formation.pack.formfile.lines import BLANK

QUOTING = re.compile(r"[\"'\\]")
PLAIN = re.compile(f"[^{BLANK}]+")


@dataclass(frozen=True)
class Word:
    value: str  # quotes and escapes removed
    offset: int  # where its raw text starts in the logical line


class QuoteError(ValueError):
    """An unterminated quote (or an escape with nothing after it) at `offset`."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset


def _skip_blank(text: str, at: int) -> int:
    while at < len(text) and text[at] in BLANK:
        at += 1
    return at


def split_words(text: str, start: int) -> list[Word]:
    """The words of text[start:] as a POSIX shell splits them: `a "b c"` is two words,
    `key:"x y"` one ("key:x y"). Raises QuoteError naming the opening quote."""
    if not QUOTING.search(text, start):  # most lines: plain words, no need for shlex's pace
        return [Word(m.group(), m.start()) for m in PLAIN.finditer(text, start)]
    stream = io.StringIO(text[start:])
    lexer = shlex.shlex(stream, posix=True)
    lexer.whitespace_split = True
    lexer.whitespace = BLANK
    lexer.commenters = ""
    words: list[Word] = []
    while True:
        begin = _skip_blank(text, start + stream.tell())
        try:
            value = lexer.get_token()
        except ValueError:
            raise _quote_error(text, begin) from None
        if value is None:
            return words
        words.append(Word(value, begin))


def _quote_error(text: str, begin: int) -> QuoteError:
    """Find the quote left open in the word starting at begin (POSIX rules: backslash escapes
    outside quotes and inside double quotes, nothing inside single quotes)."""
    quote, opened, at = "", begin, begin
    while at < len(text):
        char = text[at]
        if not quote and char in BLANK:
            break
        if char == "\\" and quote != "'":
            if at + 1 >= len(text):
                return QuoteError(at, "expected a character after '\\', got the end of the line")
            at += 2
            continue
        if not quote and char in "'\"":
            quote, opened = char, at
        elif char == quote:
            quote = ""
        at += 1
    kind, mark = ("single", "'") if quote == "'" else ("double", '"')
    return QuoteError(opened, f"unterminated {kind} quote: expected a closing {mark} "
                      "before the end of the line")
