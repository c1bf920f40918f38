"""The merged view of a stack of overlayfs layers, computed in Python from the layer trees.

Why not mount the stack and look: the disk image is made by applying one layer at a time to
the disk of the layers below it (diskchain.py), and what a layer's whiteout or replaced
directory removes is "whatever the layers below show at that path" - a question about the
lower stack alone, asked thousands of times, cheaper to answer from the trees than from a
mount namespace per question. The rules are overlayfs's, for the options the builder mounts
with (sandbox.OVERLAY_OPTS: no redirects, no metacopy): an upper entry hides every lower
entry at its path; a whiteout (a 0:0 character device) hides and shows nothing; a directory
merges with the directories below it unless it is opaque (xattr trusted.overlay.opaque=y)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

OPAQUE = "trusted.overlay.opaque"


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE, follow_symlinks=False) == b"y"
    except OSError:
        return False


def lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None


class Stack:
    """Layers topmost first (host directories). `rel` paths are relative to the image's root
    ("" is the root), without a leading slash."""

    def __init__(self, layers: Sequence[Path]) -> None:
        self.layers = list(layers)

    def _dirs(self, rel: str) -> list[Path]:
        """The layers' directories that make up the merged directory `rel`, topmost first
        (empty: `rel` is not a directory in the merged view)."""
        if rel == "":
            found: list[Path] = []
            for layer in self.layers:
                found.append(layer)
                if is_opaque(layer):
                    break
            return found
        parent, name = _split(rel)
        found = []
        for d in self._dirs(parent):
            path = d / name
            st = lstat(path)
            if st is None:
                continue
            if not stat.S_ISDIR(st.st_mode):
                break  # a file or a whiteout hides what is below it
            found.append(path)
            if is_opaque(path):
                break
        return found

    def find(self, rel: str) -> tuple[Path, os.stat_result] | None:
        """The visible entry at `rel`: its host path and lstat, or None."""
        if rel == "":
            return (self.layers[0], os.lstat(self.layers[0])) if self.layers else None
        parent, name = _split(rel)
        for d in self._dirs(parent):
            st = lstat(d / name)
            if st is None:
                continue
            return None if is_whiteout(st) else (d / name, st)
        return None

    def listdir(self, rel: str) -> list[str]:
        """The names in the merged directory `rel`, sorted."""
        names: set[str] = set()
        hidden: set[str] = set()
        for d in self._dirs(rel):
            for entry in os.scandir(d):
                if entry.name in names or entry.name in hidden:
                    continue
                st = entry.stat(follow_symlinks=False)
                (hidden if is_whiteout(st) else names).add(entry.name)
        return sorted(names)

    def walk(self, rel: str) -> Iterator[tuple[str, bool]]:
        """Every entry under the merged directory `rel`, children before their directory
        (the order removal needs): (path, is_dir)."""
        for name in self.listdir(rel):
            child = join(rel, name)
            found = self.find(child)
            if found is None:
                continue
            if stat.S_ISDIR(found[1].st_mode):
                yield from self.walk(child)
                yield child, True
            else:
                yield child, False

    def resolve(self, rel: str, depth: int = 8) -> tuple[Path, os.stat_result] | None:
        """`find` that follows symlinks in the last component (in the image, never on the
        host): /vmlinuz -> boot/vmlinuz-6.1.0-... ."""
        found = self.find(rel)
        while found is not None and stat.S_ISLNK(found[1].st_mode) and depth > 0:
            target = os.readlink(found[0])
            base = "" if target.startswith("/") else _split(rel)[0]
            rel = os.path.normpath(join(base, target.lstrip("/"))).lstrip("/")
            if rel.startswith(".."):
                return None
            found, depth = self.find(rel), depth - 1
        return found


def join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


def _split(rel: str) -> tuple[str, str]:
    parent, _, name = rel.rpartition("/")
    return parent, name
