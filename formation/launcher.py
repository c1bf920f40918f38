"""The `formation` program's entry point (the console script, `python -m formation`, the
appliance's /usr/bin/formation). sshd runs two commands on every login: the AuthorizedKeysCommand
`formation ssh-keys --socket ...` (twice) and the ForceCommand `formation console --no-embedded
--socket ...`; systemd runs `formation node` at every boot. Those exact forms run here without
click and the command table (~50 ms each, seconds under emulation); every other form, and any
variation of these, goes to formation.cli."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


def main() -> None:
    argv = sys.argv[1:]
    code = None
    if "ssh-keys" in argv:
        from formation.commands.authorized_keys import run_fast

        code = run_fast(argv)
    elif "console" in argv:
        from formation.commands.console_run import run_fast

        code = _reporting_errors(run_fast, argv)
    elif "node" in argv:
        from formation.commands.node_run import run_fast

        code = _reporting_errors(run_fast, argv)
    if code is not None:
        sys.exit(code)
    from formation.cli import main as cli_main

    cli_main()


def _reporting_errors(run_fast: Callable[[list[str]], int | None], argv: list[str]) -> int | None:
    """The console's or the node's fast path, with formation.cli.main's error reporting: one
    line, no traceback (FORMATION_DEBUG=1 shows it)."""
    from formation.errors import FormationError

    try:
        return run_fast(argv)
    except FormationError as exc:
        sys.stderr.write(f"formation: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: say so in one line; the traceback only on request
        if os.environ.get("FORMATION_DEBUG"):
            raise
        sys.stderr.write(f"formation: internal error: {type(exc).__name__}: {exc} "
                         "(set FORMATION_DEBUG=1 for details)\n")
        return 70
