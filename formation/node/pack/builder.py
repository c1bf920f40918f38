"""What the pack part calls to parse and build, as the issue 17 contract states it
(_notes/PACK.md): `formation.pack.formfile` parses, `formation.pack.build` builds. The part is
given these three functions, so tests can give it a fake builder (and say so in their names);
a node gets the real ones."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from formation.pack.spec import FormfileSpec


class Progress(Protocol):
    """formation.pack.build.BuildProgress."""

    @property
    def step(self) -> int: ...
    @property
    def total(self) -> int: ...
    @property
    def line(self) -> int | None: ...
    @property
    def label(self) -> str: ...
    @property
    def fraction(self) -> float: ...
    @property
    def cached(self) -> bool: ...
    @property
    def message(self) -> str: ...


class Built(Protocol):
    """formation.pack.build.BuiltImage: files under the build's `out` directory."""

    @property
    def kernel(self) -> Path: ...
    @property
    def initrd(self) -> Path: ...
    @property
    def disk(self) -> Path: ...
    @property
    def cmdline(self) -> str: ...
    @property
    def context_digest(self) -> str: ...


# (spec, context dir, out dir, progress callback) -> the built image, or raises (BuildError,
# CancelledError) leaving nothing in `out`.
BuildFn = Callable[[FormfileSpec, Path, Path, Callable[[Progress], None]], Awaitable[Built]]
DigestFn = Callable[[FormfileSpec, Path], str]  # blocking: hashes the COPY sources
LoadFn = Callable[[Path], tuple[FormfileSpec, Path]]  # blocking: reads the Formfile


PruneFn = Callable[[float], Awaitable[int]]  # max unused age (s) -> cache entries removed


@dataclass(frozen=True)
class Toolchain:
    load: LoadFn
    digest: DigestFn
    build: BuildFn
    prune: PruneFn | None = None  # the build cache's cleanup (None: nothing to clean)


def real_toolchain(cache_dir: Path, mirror: str) -> Toolchain:
    """The parser and the builder engine of formation/pack, with this node's build settings.
    Imported on a build's first use, not at the node's start: together they are a fifth of a
    second, which the appliance's boot under emulation would pay before READY."""

    def load(path: Path) -> tuple[FormfileSpec, Path]:
        from formation.pack.formfile import load_formfile

        return load_formfile(path)

    def digest(spec: FormfileSpec, context: Path) -> str:
        from formation.pack.build import context_digest

        return context_digest(spec, context)

    async def build(spec: FormfileSpec, context: Path, out: Path,
                    progress: Callable[[Progress], None]) -> Built:
        from formation.pack.build import BuildSettings, build_image

        settings = BuildSettings(cache_dir=cache_dir, mirror=mirror)
        return await build_image(spec, context, settings, out, progress)

    async def prune(max_age_s: float) -> int:
        from formation.pack.build import BuildSettings, prune_cache

        return await prune_cache(BuildSettings(cache_dir=cache_dir, mirror=mirror), max_age_s)

    return Toolchain(load, digest, build, prune)


def error_line(exc: BaseException) -> int | None:
    """The Formfile line a BuildError names (the contract's `.line`), if any."""
    line = getattr(exc, "line", None)
    return line if isinstance(line, int) else None


def problems(exc: BaseException) -> list[tuple[int, int, str]]:
    """A FormfileError's problems as (line, column, message)."""
    found = []
    for problem in getattr(exc, "problems", None) or []:
        line, column = getattr(problem, "line", 0), getattr(problem, "column", 0)
        found.append((line if isinstance(line, int) else 0,
                      column if isinstance(column, int) else 0,
                      str(getattr(problem, "message", problem))))
    return found

