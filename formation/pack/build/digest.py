"""What a build reads from the build context, hashed: the digest of one COPY's sources (part of
that step's cache key) and the digest of a whole build's inputs (`pack ship` reuses an image
whose digest matches instead of building again). Modes and bytes count, timestamps do not: a
fresh checkout of the same files builds the same image."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

from formation.pack.build.model import BuildError
from formation.pack.spec import Copy, FormfileSpec

CHUNK = 1 << 20


def copy_source(context: Path, step: Copy) -> Path:
    """The path a COPY reads, inside the context (the parser checks this too; a build from a
    spec made elsewhere must not read outside its context either)."""
    root = context.resolve()
    path = (root / step.src).resolve()
    if path != root and root not in path.parents:
        raise BuildError(f"Formfile line {step.line} (COPY {step.src}): the source is outside "
                         f"the build context {root}", step.line)
    if not path.exists():
        raise BuildError(f"Formfile line {step.line} (COPY {step.src}): no such file or "
                         f"directory in the build context {root}", step.line)
    return path


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def tree_entries(path: Path) -> list[tuple[str, str, int, str]]:
    """(relative path, kind, permission bits, content sha or link target) of every entry,
    sorted, symlinks not followed."""
    entries: list[tuple[str, str, int, str]] = []

    def add(p: Path, rel: str) -> None:
        st = p.lstat()
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            entries.append((rel, "link", 0, os.readlink(p)))
        elif stat.S_ISDIR(st.st_mode):
            entries.append((rel, "dir", mode, ""))
            for child in sorted(p.iterdir(), key=lambda c: c.name):
                add(child, f"{rel}/{child.name}" if rel else child.name)
        elif stat.S_ISREG(st.st_mode):
            entries.append((rel, "file", mode, _file_sha(p)))
        else:
            entries.append((rel, "special", mode, ""))

    add(path, "")
    return entries


def copy_digest(context: Path, step: Copy) -> str:
    entries = tree_entries(copy_source(context, step))
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def context_digest(spec: FormfileSpec, context: Path) -> str:
    """SHA-256 over the Formfile source and every file COPY reads (path, mode, bytes): two builds
    with equal digests make the same image, so `pack ship` reuses the image instead of building.
    The parsed spec counts too, so a spec built without its source text is still told apart."""
    h = hashlib.sha256(b"formation-pack-context-v1\0")
    h.update(spec.source.encode())
    h.update(b"\0")
    h.update(json.dumps(spec.to_dict(), sort_keys=True).encode())
    for step in spec.steps:
        if isinstance(step, Copy):
            h.update(f"\0{step.src}\0{copy_digest(context, step)}".encode())
    return h.hexdigest()
