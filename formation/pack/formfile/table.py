"""Every directive a Formfile may use, its aliases, and a word for the ones people bring from
Dockerfiles that mean something else here."""

from __future__ import annotations

from collections.abc import Callable

from formation.pack.formfile import commands, resources, steps, user
from formation.pack.formfile.state import Directive, State

Handler = Callable[[State, Directive], None]

DIRECTIVES: dict[str, Handler] = {
    "NAME": resources.name,
    "DESCRIPTION": resources.description,
    "FROM": resources.base,
    "VCPU": resources.vcpus,
    "MEM": resources.memory,
    "DISK": resources.disk,
    "GPU": resources.gpu,
    "USER": user.user,
    "RUN": commands.run,
    "COPY": steps.copy,
    "INSTALL": steps.install,
    "ENV": steps.env,
    "WORKDIR": steps.workdir,
    "ENTRYPOINT": commands.entrypoint,
    "EXPOSE": commands.expose,
}

ALIASES: dict[str, str] = {
    "CPU": "VCPU", "CORES": "VCPU",
    "MEMORY": "MEM", "MBS": "MEM",
    "STORAGE": "DISK",
}

FROM_DOCKERFILES: dict[str, str] = {
    "CMD": "use ENTRYPOINT (it becomes the workload's systemd service)",
    "ADD": "use COPY (files come from the build context; download with RUN)",
    "ARG": "write the value in place (Formfiles have no build arguments)",
    "LABEL": "use DESCRIPTION",
    "MAINTAINER": "use DESCRIPTION",
    "VOLUME": "use DISK for the size of the instance's disk",
}

EXPECTED = ", ".join(DIRECTIVES)


def canonical(word: str) -> str | None:
    upper = word.upper()
    if upper in DIRECTIVES:
        return upper
    return ALIASES.get(upper)
