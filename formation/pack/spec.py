"""A parsed Formfile: what the parser produces and the builder, `pack ship` and the API consume.
Plain frozen dataclasses with no node imports, so `pack validate` runs on a laptop. Every item
keeps the line it came from, so a build step that fails can name the Formfile line."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

VCPUS = (1, 128)
MEMORY_MIB = (512, 256_000)
DISK_GB = (5, 65_535)
GPU_COUNT = (1, 8)
DEFAULT_BASE = "debian:bookworm"


@dataclass(frozen=True)
class User:
    line: int
    username: str
    passwd: str | None = None
    ssh_authorized_keys: tuple[str, ...] = ()
    sudo: str | None = None
    shell: str | None = None
    lock_passwd: bool | None = None
    ssh_pwauth: bool | None = None
    disable_root: bool | None = None
    chpasswd_expire: bool | None = None
    groups: tuple[str, ...] = ()
    kind: Literal["user"] = "user"


@dataclass(frozen=True)
class Run:
    line: int
    command: str
    kind: Literal["run"] = "run"


@dataclass(frozen=True)
class Copy:
    line: int
    src: str  # relative to the build context, never outside it (the parser checks)
    dst: str
    kind: Literal["copy"] = "copy"


@dataclass(frozen=True)
class Install:
    line: int
    packages: tuple[str, ...]
    kind: Literal["install"] = "install"


@dataclass(frozen=True)
class Env:
    line: int
    key: str
    value: str
    scope: str = "system"  # "system", "user:NAME" or "service:NAME"
    kind: Literal["env"] = "env"


@dataclass(frozen=True)
class Workdir:
    line: int
    path: str
    kind: Literal["workdir"] = "workdir"


Step = User | Run | Copy | Install | Env | Workdir


@dataclass(frozen=True)
class Gpu:
    line: int
    model: str
    count: int = 1


@dataclass(frozen=True)
class Entrypoint:
    """Exactly one of `argv` (JSON-array form) and `shell` (shell form) is set."""
    line: int
    argv: tuple[str, ...] | None = None
    shell: str | None = None


@dataclass(frozen=True)
class Expose:
    line: int
    port: int
    protocol: Literal["tcp", "udp"] = "tcp"


@dataclass(frozen=True)
class FormfileSpec:
    """The whole Formfile. `steps` are the build steps in file order (each one cached on the
    ones before it); the rest is metadata the build or the instance uses."""
    name: str
    description: str | None = None
    base: str = DEFAULT_BASE
    vcpus: int = 1
    memory_mib: int = 512
    disk_gb: int | None = None
    gpus: tuple[Gpu, ...] = ()
    steps: tuple[Step, ...] = ()
    entrypoint: Entrypoint | None = None
    expose: tuple[Expose, ...] = ()
    source: str = field(default="", compare=False)  # the Formfile's text, as read

    def to_dict(self) -> dict[str, Any]:
        """For `--json` and the API: every field, steps tagged by `kind`, no source text."""
        doc = dataclasses.asdict(self)
        doc.pop("source")
        return doc
