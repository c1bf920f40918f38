"""Carries out a validated answer file. Founding and joining write to the replicated state store
(`formation network create` / `join`), which this build does not have yet: until it does, this says
so plainly instead of pretending the node enrolled."""

from __future__ import annotations

from formation.enroll.answer_file import AnswerFile
from formation.errors import FormationError


class EnrolmentUnavailable(FormationError):
    """The answer file is valid but this build cannot act on it yet."""

    exit_code = 3


def apply_answer_file(answer: AnswerFile) -> None:
    action = "founding" if answer.network.found is not None else "joining"
    command = "network create" if answer.network.found is not None else "network join"
    raise EnrolmentUnavailable(
        f"enrolment not yet available: {action} a network needs the state store "
        f"(`formation {command}`), which this build does not have; the answer file is valid "
        "and nothing was changed"
    )
