"""Formation: one node service per host; every screen and command is a client of its API."""

from __future__ import annotations


def __getattr__(name: str) -> object:
    """`__version__` is looked up on first use: importlib.metadata costs tens of milliseconds,
    which every `formation` start (and sshd's `ssh-keys` on every login) would pay."""
    if name != "__version__":
        raise AttributeError(f"module 'formation' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("formation")
    except PackageNotFoundError:  # running from a source tree without an install
        found = "0.0.0+src"
    globals()["__version__"] = found
    return found
