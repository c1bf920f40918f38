"""Writing one blob into the store. Bytes go to a temp file in the store's own `tmp/` (same
filesystem, so the final rename is atomic), are hashed as they are written, fsynced, and only
then renamed to `blobs/<sha256>`: a blob under its final name is always whole and verified, so a
crash or a bad transfer can never leave a half-written file that looks usable."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

HEX64 = re.compile(r"^[0-9a-f]{64}$")


FICLONE = 0x40049409  # ioctl: share the source file's extents


class BlobMismatch(ValueError):
    """The bytes written do not hash to the digest they were meant to have."""


class TooLarge(ValueError):
    """More bytes came than the blob's declared size."""


class BlobWriter:
    """One temp file being filled. Not thread-safe; call from one thread at a time (the store
    calls it from worker threads, never on the event loop)."""

    def __init__(self, tmp_dir: Path, blobs_dir: Path, limit: int | None = None) -> None:
        self.blobs_dir = blobs_dir
        self.limit = limit
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="blob-", suffix=".part")
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self._cloned: str | None = None  # the digest of a reflinked copy, hashed after cloning
        self.size = 0

    def write(self, chunk: bytes) -> None:
        if self.limit is not None and self.size + len(chunk) > self.limit:
            raise TooLarge(f"more than the declared {self.limit} bytes")
        self._file.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    def fill_by_reflink(self, source: Path) -> bool:
        """Fill the temp file by cloning `source` where the filesystem can (btrfs, XFS: a
        copy in no time), then hash the clone: what is stored is what is verified. False
        when the filesystem cannot; the caller copies instead."""
        import fcntl

        try:
            with open(source, "rb") as src:
                fcntl.ioctl(self._file.fileno(), FICLONE, src.fileno())
        except OSError:
            return False
        self._cloned, self.size = hash_file(self.path)
        return True

    @property
    def digest(self) -> str:
        return self._cloned or self._hash.hexdigest()

    def commit(self, expected: str | None = None, size: int | None = None) -> str:
        """fsync, check against `expected` (and `size`), rename to its final name. Returns the
        digest. On a mismatch the temp file is deleted and BlobMismatch raised."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        digest = self.digest
        if (expected is not None and digest != expected) or (size is not None
                                                              and self.size != size):
            self.abort()
            raise BlobMismatch(f"got {self.size} bytes hashing to {digest[:12]}")
        final = self.blobs_dir / digest
        os.chmod(self.path, 0o444)  # blobs are immutable; overlays are made on top of them
        os.replace(self.path, final)
        fsync_dir(self.blobs_dir)
        return digest

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def hash_file(path: Path, chunk: int = 1 << 20) -> tuple[str, int]:
    """(sha256 hex, size) of a file, read in chunks: blocking, run it in a thread."""
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while data := f.read(chunk):
            h.update(data)
            size += len(data)
    return h.hexdigest(), size
