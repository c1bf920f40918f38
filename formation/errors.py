"""Errors a user may see. Each carries a one-line message; the CLI prints it without a traceback."""


class FormationError(Exception):
    """An error with a message meant for the person at the terminal."""

    exit_code = 1


class ConfigError(FormationError):
    """The configuration is invalid; nothing was started."""

    exit_code = 2


class IdentityError(FormationError):
    """The node's key material is missing, unreadable or unsafe."""
