"""Checks the config file before the console draws anything, without making its first frame
wait for pydantic and YAML (a third of a second): a forked child loads the settings while the
parent imports Textual, and the parent reads the child's verdict just before the app starts.
The two run on two cores; the console loads the settings again itself after its first frame
(it needs the objects, which cannot cross the pipe cheaply)."""

from __future__ import annotations

import os
from collections.abc import Callable

from formation.commands.context import Context
from formation.errors import ConfigError, FormationError


def start_config_check(obj: Context) -> Callable[[], None]:
    """Starts the check; the returned function waits for it and raises the settings' own error
    (a ConfigError naming file, line and key) if they do not load."""
    if not hasattr(os, "fork"):
        return lambda: _raise(_verdict(obj))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: nothing of the parent's (atexit, buffers) may run here
        os.close(read_end)
        try:
            os.write(write_end, _verdict(obj).encode())
        finally:
            os._exit(0)
    os.close(write_end)

    def wait() -> None:
        with os.fdopen(read_end, "rb") as pipe:
            answer = pipe.read().decode()
        os.waitpid(pid, 0)
        _raise(answer)  # empty: loaded, or the child died (the console's own load reports)

    return wait


def _raise(verdict: str) -> None:
    if verdict:
        code, _, message = verdict.partition("\n")
        error = ConfigError(message)
        error.exit_code = int(code)
        raise error


def _verdict(obj: Context) -> str:
    """"" if the settings load; else the error's exit code and message."""
    try:
        _ = obj.settings  # loading is the check
    except FormationError as exc:
        return f"{exc.exit_code}\n{exc}"
    except Exception:  # a bug, not a config error: the console's own load says it in its way
        return ""
    return ""
