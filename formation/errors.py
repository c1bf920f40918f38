"""Errors a user may see. Each carries a one-line message; the CLI prints it without a traceback."""


class FormationError(Exception):
    """An error with a message meant for the person at the terminal."""

    exit_code = 1


class ConfigError(FormationError):
    """The configuration is invalid; nothing was started."""

    exit_code = 2


class IdentityError(FormationError):
    """The node's key material is missing, unreadable or unsafe."""


class OpError(ValueError):
    """Why a state op is malformed or refused. `reason` is a short code (metrics label); the
    message names the field and what was expected. Defined here, not in node/state, because
    discovery's join code catches it from the store it is given and never imports the node."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
