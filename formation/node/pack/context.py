"""Where a build's context comes from: a directory on the node (local callers, who share its
disk) or a tar uploaded by a remote caller, unpacked into the build's scratch directory.

An uploaded tar is hostile input: only regular files and directories, no absolute names or
`..`, bounded in members and unpacked bytes (a small gzip can hold gigabytes), and unpacked with
tarfile's `data` filter as a second guard. Blocking: call in a thread."""

from __future__ import annotations

import base64
import binascii
import io
import tarfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from formation.errors import FormationError

MAX_MEMBERS = 10_000
MAX_UNPACKED_BYTES = 512 * 1024 * 1024


class ContextError(FormationError):
    """A one-line reason the build context cannot be used; `field` is the request's field."""

    def __init__(self, message: str, field: str = "context", status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


def local_context(value: str) -> Path:
    """A path on the node: the context directory, or a Formfile (its directory is the
    context). What load_formfile takes."""
    path = Path(value)
    if not path.is_absolute():
        raise ContextError(f"context: expected an absolute path on the node, got {value!r}")
    if not path.exists():
        raise ContextError(f"context: {value} does not exist on the node")
    if path.is_dir() and not (path / "Formfile").is_file():
        raise ContextError(f"context: {value} holds no Formfile")
    return path


def unpack_context(encoded: str, dest: Path) -> Path:
    """The uploaded tar (base64) unpacked into `dest`, which it returns."""
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ContextError("context_tar: expected base64 of a tar", "context_tar") from None
    return _unpack(io.BytesIO(raw), dest, "context_tar")


def unpack_tar_file(tar_path: Path, dest: Path, field: str = "upload") -> Path:
    """A tar uploaded in chunks (uploads.py), unpacked into `dest`, which it returns."""
    with tar_path.open("rb") as f:
        return _unpack(f, dest, field)


def _unpack(fileobj: BinaryIO, dest: Path, field: str) -> Path:
    try:
        with tarfile.open(fileobj=fileobj, mode="r:*") as tar:
            members = _checked(tar, field)
            dest.mkdir(parents=True, exist_ok=True)
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ContextError(f"{field}: not a readable tar: {exc}", field) from None
    if not (dest / "Formfile").is_file():
        raise ContextError(f"{field}: no Formfile at the top of the tar", field)
    return dest


def _checked(tar: tarfile.TarFile, field: str) -> list[tarfile.TarInfo]:
    members: list[tarfile.TarInfo] = []
    total = 0
    for member in tar:
        if len(members) >= MAX_MEMBERS:
            raise ContextError(f"{field}: more than {MAX_MEMBERS} entries", field,
                               413)
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts:
            raise ContextError(f"{field}: {member.name[:100]!r}: expected a relative "
                               f"name inside the context", field)
        if not (member.isreg() or member.isdir()):
            raise ContextError(f"{field}: {member.name[:100]!r}: expected regular files "
                               f"and directories only (no links or devices)", field)
        total += member.size
        if total > MAX_UNPACKED_BYTES:
            raise ContextError(f"{field}: more than {MAX_UNPACKED_BYTES >> 20} MiB "
                               f"unpacked; build a large context from a path on the node",
                               field, 413)
        members.append(member)
    return members


def pack_context(context: Path) -> bytes:
    """A gzip tar of a context directory, its Formfile at the top (what a remote `pack build`
    uploads). Only regular files and directories, as `unpack_context` accepts."""
    buffer = io.BytesIO()

    def regular(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if not (info.isreg() or info.isdir()):
            return None
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for child in sorted(context.iterdir()):
            tar.add(child, arcname=child.name, filter=regular)
    return buffer.getvalue()
