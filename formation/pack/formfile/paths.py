"""COPY sources stay inside the build context: a Formfile someone hands you must not be able
to copy your ~/.ssh into an image by a path, a '..' or a symlink. Destinations are resolved
against the current WORKDIR here, so the builder sees only absolute paths."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from formation.pack.formfile.values import shown


def _escapes(path: Path, root: Path) -> bool:
    return not path.resolve().is_relative_to(root)


def source_problem(src: str, context: Path | None) -> str | None:
    """Why src cannot be copied from the context, or None. Without a context (validating text
    alone) only the path's shape is checked."""
    if not src:
        return "expected a path inside the build context, got ''"
    if posixpath.isabs(src):
        return (f"expected a path relative to the build context, got the absolute path "
                f"{shown(src)} (copy the file into the context first)")
    normal = posixpath.normpath(src)
    if normal == ".." or normal.startswith("../"):
        return f"expected a path inside the build context, got {shown(src)}, which leaves it"
    if context is None:
        return None
    try:
        root = context.resolve()
        path = root / normal
        if not os.path.lexists(path):
            return (f"expected a file or directory of the build context, got {shown(src)}: "
                    "no such file")
        if _escapes(path, root):
            return (f"expected a path inside the build context, got {shown(src)}: a symlink "
                    "out of it")
        if path.is_dir():
            return _escaping_link_under(path, root, src)
    except (OSError, ValueError, RuntimeError) as exc:  # NUL, too long, a symlink loop...
        return f"expected a readable path of the build context, got {shown(src)}: {exc}"
    return None


def _escaping_link_under(directory: Path, root: Path, src: str) -> str | None:
    """A directory is copied with what is in it: a symlink inside it must not lead out."""
    for parent, dirs, files in os.walk(directory):
        for entry in (*dirs, *files):
            path = Path(parent) / entry
            if path.is_symlink() and _escapes(path, root):
                inside = path.relative_to(root).as_posix()
                return (f"expected a directory whose symlinks stay in the build context, got "
                        f"{shown(src)}: {inside} leads out of it")
    return None


def absolute(path: str, workdir: str) -> str:
    """path resolved against workdir and normalized. A path that names a directory by its form
    (a trailing '/', or '.' or '..' last: `COPY app.py .`) keeps a trailing '/': it tells COPY
    "into this directory", which normpath alone would lose."""
    joined = posixpath.normpath(posixpath.join(workdir, path))
    if joined.startswith("//"):
        joined = "/" + joined.lstrip("/")
    directory = path.endswith("/") or posixpath.basename(path) in (".", "..")
    return joined + "/" if directory and joined != "/" else joined
