"""Formation: one node service per host; every screen and command is a client of its API."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    __version__: str  # set on first use by __getattr__

_DIST_INFO = ("formation-", ".dist-info")


def _version_beside_package() -> str | None:
    """The version in the name of the `formation-<version>.dist-info` that pip put beside the
    package (the appliance's /usr/lib/formation/site): one directory listing, where
    importlib.metadata first imports itself and then reads every entry of sys.path. None when
    there is no single such directory (an editable install, a source tree)."""
    try:
        names = os.listdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    except OSError:
        return None
    found = [n[len(_DIST_INFO[0]):-len(_DIST_INFO[1])] for n in names
             if n.startswith(_DIST_INFO[0]) and n.endswith(_DIST_INFO[1])]
    return found[0] if len(found) == 1 else None


def __getattr__(name: str) -> object:
    """`__version__` is looked up on first use: importlib.metadata costs tens of milliseconds,
    which every `formation` start (and sshd's `ssh-keys` on every login) would pay."""
    if name != "__version__":
        raise AttributeError(f"module 'formation' has no attribute {name!r}")
    found = _version_beside_package()
    if found is None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("formation")
        except PackageNotFoundError:  # running from a source tree without an install
            found = "0.0.0+src"
    globals()["__version__"] = found
    return found
