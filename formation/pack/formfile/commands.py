"""RUN and ENTRYPOINT, which take a command in exec form (a JSON array of strings, run without
a shell) or shell form (the rest of the line, run by /bin/sh -c), and EXPOSE.

Text starting with '[' and then '"' or ']' is exec form and must be valid JSON: Docker quietly
runs broken JSON as a shell command, a mistake found only when the service fails to start.
`[ -f x ] && ...` (the test command) stays shell form."""

from __future__ import annotations

import json
import re
import shlex
from typing import Literal

from formation.pack.formfile.state import Directive, State
from formation.pack.formfile.values import shown
from formation.pack.spec import Entrypoint, Expose, Run

EXEC_FORM = re.compile(r"\[\s*[\"\]]")
EXEC_EXPECTED = 'a JSON array of strings, like ["python3", "app.py"]'


def _command(state: State, d: Directive) -> tuple[tuple[str, ...] | None, str | None] | None:
    """(argv, None) for exec form, (None, text) for shell form, None after a problem."""
    text = d.rest.strip()
    if not text:
        state.fail(d, d.end, "expected a command (shell form) or " + EXEC_EXPECTED + ", "
                   "got nothing")
        return None
    if EXEC_FORM.match(text):
        return _exec_form(state, d, text)
    # Quotes are checked as the shell would read them, so an unterminated quote is caught here
    # rather than when the build (or the service) runs it.
    if state.words(d) is None:
        return None
    return None, text


def _exec_form(state: State, d: Directive, text: str) -> tuple[tuple[str, ...], None] | None:
    try:
        argv = json.loads(text)
    except json.JSONDecodeError as exc:
        state.fail(d, d.args + exc.pos, f"expected {EXEC_EXPECTED}: {exc.msg}")
        return None
    except RecursionError:
        state.fail(d, d.args, f"expected {EXEC_EXPECTED}, got nested arrays")
        return None
    if not isinstance(argv, list) or not all(isinstance(arg, str) for arg in argv):
        state.fail(d, d.args, f"expected {EXEC_EXPECTED}, got other values in the array")
        return None
    if not argv or not argv[0]:
        state.fail(d, d.args, f"expected {EXEC_EXPECTED}, got no program to run")
        return None
    if any("\0" in arg for arg in argv):
        state.fail(d, d.args, f"expected {EXEC_EXPECTED}, got a NUL character")
        return None
    return tuple(argv), None


def run(state: State, d: Directive) -> None:
    """A build step. Exec form is stored as the equivalent shell command (shlex.join), so the
    builder has one form to run."""
    found = _command(state, d)
    if found is None:
        return
    argv, shell = found
    command = shlex.join(argv) if argv is not None else shell
    assert command is not None
    state.steps.append(Run(line=d.line, command=command))


def entrypoint(state: State, d: Directive) -> None:
    if not state.once(d):
        return
    found = _command(state, d)
    if found is None:
        return
    argv, shell = found
    if argv is not None and "/" in argv[0] and not argv[0].startswith("/"):
        state.fail(d, d.args, "expected the program as an absolute path or a name found in "
                   f"PATH (the service does not run from a directory), got {shown(argv[0])}")
        return
    state.entrypoint = Entrypoint(line=d.line, argv=argv, shell=shell)


PORT_EXPECTED = "a port from 1 to 65535, optionally with /tcp or /udp (8080, 53/udp)"


def expose(state: State, d: Directive) -> None:
    """One or more ports: `EXPOSE 80 443/tcp 53/udp`."""
    words = state.words(d)
    if words is None:
        return
    if not words:
        state.fail(d, d.end, f"expected {PORT_EXPECTED}, got nothing")
        return
    for word in words:
        match = re.fullmatch(r"([0-9]{1,5})(?:/(tcp|udp))?", word.value, re.IGNORECASE)
        port = int(match.group(1)) if match else 0
        if match is None or not 1 <= port <= 65535:
            state.fail(d, word.offset, f"expected {PORT_EXPECTED}, got {shown(word.value)}")
            continue
        protocol: Literal["tcp", "udp"] = \
            "udp" if (match.group(2) or "tcp").lower() == "udp" else "tcp"
        earlier = next((e for e in state.expose if (e.port, e.protocol) == (port, protocol)),
                       None)
        if earlier is not None:
            state.fail(d, word.offset, f"{port}/{protocol} already exposed on line "
                       f"{earlier.line}: expected each port once")
            continue
        state.expose.append(Expose(line=d.line, port=port, protocol=protocol))
