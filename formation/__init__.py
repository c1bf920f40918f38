"""Formation: one node service per host; every screen and command is a client of its API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("formation")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+src"
