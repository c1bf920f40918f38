"""The shapes a Formfile value can have, each with the words used to say what was expected."""

from __future__ import annotations

import re

# The same rule as instance and image names (formation.api.vm_models.NAME), so a Formfile's
# NAME can name the image and the instance; copied, not imported: the parser needs no pydantic.
NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")
NAME_EXPECTED = "a name of lowercase letters, digits and '-', starting with a letter (at most 63)"
USERNAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
USERNAME_EXPECTED = ("a Linux user name (lowercase letters, digits, '_' and '-', starting with a "
                     "letter or '_', at most 32)")
GROUP = USERNAME
SERVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")
ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Debian policy: lowercase letters, digits, + - . ; at least two characters, starting with a
# letter or digit. An optional =VERSION pins it (apt's syntax).
PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?")
GPU_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DIGITS = re.compile(r"[0-9]{1,9}")
TRUE = {"true", "yes", "on", "1"}
FALSE = {"false", "no", "off", "0"}

# The bases a build can start from: Debian's current releases by codename. bookworm (12) is the
# default (what the appliance and the guest kits run); trixie (13) is the stable release since
# August 2025. Older releases are out of security support; "stable" and "testing" are refused
# because they move, and the same Formfile must build the same system everywhere.
BASES = {"bookworm": "debian:bookworm", "trixie": "debian:trixie"}
BASE_ALIASES = {"12": "bookworm", "13": "trixie"}
BASE_EXPECTED = "a Debian release: debian:bookworm (the default) or debian:trixie"


def whole(text: str, low: int, high: int) -> int | None:
    """text as an int in [low, high], or None. Only ASCII digits: int() also takes other
    scripts' digits and '1_0'."""
    if not DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


def boolean(text: str) -> bool | None:
    lowered = text.lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    return None


def base(text: str) -> str | None:
    """'debian:bookworm', 'bookworm', 'debian:12' (any case) -> 'debian:bookworm'."""
    lowered = text.lower()
    distro, _, release = lowered.rpartition(":")
    if distro not in ("", "debian"):
        return None
    return BASES.get(BASE_ALIASES.get(release, release))


def memory_mib(text: str) -> int | None:
    """MiB as a plain number, or with a unit: 2048, 2048M, 2048MiB, 2G, 2GiB (G = 1024 MiB)."""
    match = re.fullmatch(r"([0-9]{1,9})\s*(m|mb|mib|g|gb|gib)?", text.lower())
    if match is None:
        return None
    value = int(match.group(1))
    return value * 1024 if (match.group(2) or "m").startswith("g") else value


def disk_gb(text: str) -> int | None:
    """GB as a plain number, or with a G/GB unit: 20, 20G, 20GB."""
    match = re.fullmatch(r"([0-9]{1,9})\s*(g|gb)?", text.lower())
    return None if match is None else int(match.group(1))


def shown(value: str) -> str:
    """A user's value quoted for a message, cut short: a 60 KB line must not become a 60 KB
    message."""
    return repr(value if len(value) <= 60 else value[:57] + "...")
