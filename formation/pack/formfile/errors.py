"""What a Formfile's author sees: every problem of the file at once, each naming its line and
column and what was expected there, so one round of edits fixes them all."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from formation.errors import FormationError


@dataclass(frozen=True, order=True)
class Problem:
    """One mistake. Lines and columns count from 1 (columns in characters, a tab is one);
    line 0 means the file as a whole (it cannot be read, or it is too large)."""

    line: int
    column: int
    message: str

    def located(self, filename: str = "Formfile") -> str:
        if self.line == 0:
            return f"{filename}: {self.message}"
        return f"{filename}:{self.line}:{self.column}: {self.message}"

    def __str__(self) -> str:
        return self.located()


class FormfileError(FormationError):
    """The Formfile is not valid. str() is every problem, one per line, in file order, in the
    "Formfile:LINE:COL: message" form editors and terminals make clickable."""

    exit_code = 2

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = sorted(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))
