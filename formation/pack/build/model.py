"""The builder's vocabulary: what a caller configures, what it is told as the build goes, what
it gets back and what a failure says. Plain values, so the node part, the API and the CLI can
pass them around without knowing how an image is made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from formation.errors import FormationError

MESSAGE_MAX = 200


@dataclass(frozen=True)
class BuildSettings:
    """`cache_dir` holds the layer cache (base systems and one layer per step) and the apt
    archive cache; it must be on a filesystem that can be an overlayfs upper layer (ext4, xfs,
    btrfs: not tmpfs-in-overlay or NFS). `mirror` is the only place packages come from."""
    cache_dir: Path
    mirror: str = "http://deb.debian.org/debian"
    jobs_dir: Path | None = None  # scratch; default cache_dir/"work" (same filesystem: faster)

    @property
    def scratch(self) -> Path:
        return self.jobs_dir if self.jobs_dir is not None else self.cache_dir / "work"


@dataclass(frozen=True)
class BuildProgress:
    step: int  # 1-based; 0 = preparing the base
    total: int
    line: int | None  # the Formfile line of this step (None for base/finishing steps)
    label: str  # "INSTALL curl", "base debian:bookworm", "disk image", ...
    fraction: float  # 0..1 over the whole build
    cached: bool  # this step came from the cache
    message: str = ""  # last line of the step's output, <= 200 chars


class BuildError(FormationError):
    """A build that failed, in one line: which Formfile line (when a step failed) and why,
    with the last thing the step printed, e.g.
    "Formfile line 7 (RUN false): exited with status 1: <last output>"."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class BuiltImage:
    kernel: Path
    initrd: Path
    disk: Path
    cmdline: str  # what `vm create` boots with
    context_digest: str  # = context_digest(spec, context)


def clip(text: str, limit: int = MESSAGE_MAX) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
