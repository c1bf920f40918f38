"""The starter Formfile `formation kit init` writes: the values asked for, and every other
directive shown commented out with an example, so the file teaches the grammar by itself."""

from __future__ import annotations

import re
from collections.abc import Sequence

from formation.pack.formfile.values import NAME

DEFAULT_DISK_GB = 5

TEMPLATE = """\
# Formfile of {name}: what `formation pack build` turns into a VM image, and what each
# instance of it gets. Reference: docs/formfile.md. Check it: `formation pack validate`.
NAME {name}
DESCRIPTION {description}
FROM debian:bookworm

# Resources of each instance.
VCPU {vcpus}
MEM {memory_mib}
DISK {disk_gb}

# Debian packages, from the building node's mirror.
{install}

# A user to log in as (your public key between the quotes):
# USER username:app sudo:true ssh_authorized_keys:"ssh-ed25519 AAAA... you@laptop"

# Files from this directory (the build context), the environment, the working directory:
# COPY app/ /srv/app/
# ENV PORT=8080
# WORKDIR /srv/app

# The command each instance runs as a service (a JSON array, or a shell command):
# ENTRYPOINT ["python3", "-m", "http.server", "8080"]

{expose}
"""


def default_name(directory_name: str) -> str:
    """A valid NAME from a directory's name ("My App" -> "my-app"), or "app"."""
    name = re.sub(r"[^a-z0-9]+", "-", directory_name.lower()).strip("-")
    name = re.sub(r"^[^a-z]+", "", name)[:63].rstrip("-")
    return name if NAME.fullmatch(name) else "app"


def starter_formfile(name: str, *, vcpus: int = 1, memory_mib: int = 512,
                     disk_gb: int = DEFAULT_DISK_GB, packages: Sequence[str] = (),
                     expose: Sequence[str] = (), description: str | None = None) -> str:
    install = f"INSTALL {' '.join(packages)}" if packages else "# INSTALL curl"
    ports = f"EXPOSE {' '.join(expose)}" if expose else "# EXPOSE 8080"
    return TEMPLATE.format(name=name, description=description or f"The {name} workload",
                           vcpus=vcpus, memory_mib=memory_mib, disk_gb=disk_gb,
                           install=install, expose=ports)
