"""Headless enrolment: an answer file says which network to found or join, and the node does it
without anyone at the console (the appliance's `formation.headless` mode)."""

from formation.enroll.answer_file import AnswerFile, load_answer_file

__all__ = ["AnswerFile", "load_answer_file"]
