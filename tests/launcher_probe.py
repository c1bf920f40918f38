"""Runs `formation.launcher.main()` in a fresh interpreter with one function replaced by a probe
that prints what the fast-path tests look at (sys.modules, the arguments it got)."""

from __future__ import annotations

import subprocess
import sys


def launcher_output(patch: str, args: list[str]) -> str:
    """`patch`: Python lines that import the module and replace the function; `json` and `sys`
    are imported for them. Returns the probe's standard output."""
    code = (f"import json, sys\n{patch}\n"
            f"sys.argv = ['formation', *{args!r}]\n"
            "from formation.launcher import main\nmain()\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout
