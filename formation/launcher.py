"""The `formation` program's entry point (the console script, `python -m formation`, the
appliance's /usr/bin/formation). sshd runs `formation ssh-keys --socket ...` twice on every
login; that form goes to a standard-library path (formation.commands.authorized_keys) before
click and the command table are imported. Everything else is formation.cli."""

from __future__ import annotations

import sys


def main() -> None:
    argv = sys.argv[1:]
    if "ssh-keys" in argv:
        from formation.commands.authorized_keys import run_fast

        code = run_fast(argv)
        if code is not None:
            sys.exit(code)
    from formation.cli import main as cli_main

    cli_main()
