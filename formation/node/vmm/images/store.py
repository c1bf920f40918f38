"""This node's image store: blobs by SHA-256 under `root/blobs/<hex>`, nothing else. An image
(the image.add payload) names its parts by digest, so two images sharing a kernel share its
blob, and whether this node holds an image is whether it holds each part's blob.

Every blob under its final name was hashed as it was written (blob.py): import and fetch both
verify before the rename, so `has()` needs no re-hash of a 10 GB disk; `verify()` re-hashes on
demand (an operator suspecting the disk)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from formation.errors import FormationError
from formation.node.state.image_manifest import MAX_CMDLINE, PARTS, image_digest, parts_problem
from formation.node.vmm.images.blob import HEX64, BlobWriter, hash_file

CHUNK = 1 << 20
Progress = Callable[[str, int], None]  # (part, bytes so far) while importing


class ImageError(FormationError):
    """A one-line reason an image cannot be imported, found or fetched."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.tmp = root / "tmp"

    def open(self) -> None:
        """Create the directories and drop temp files a crash left (never under a blob's
        name, so nothing else is touched). Blocking: call in a thread, once, before any import
        or fetch starts (it would delete their temp files)."""
        self.make_dirs()
        for leftover in self.tmp.iterdir():
            leftover.unlink(missing_ok=True)

    def make_dirs(self) -> None:
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)

    # naming ---------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        """The path a blob has or will have; refuses anything but 64 lowercase hex, so no
        digest can name a path outside the store."""
        if not HEX64.match(digest):
            raise ImageError(f"digest: expected a SHA-256 (64 hex), got {digest[:70]!r}",
                             "digest")
        return self.blobs / digest

    def has_blob(self, digest: str, size: int | None = None) -> bool:
        try:
            st = self.blob_path(digest).stat()
        except (OSError, ImageError):
            return False
        return size is None or st.st_size == size

    def has(self, payload: dict[str, Any]) -> bool:
        """Every part of the image is here (whole and verified: see the module docstring)."""
        return all(self.has_blob(p["digest"], p["size"]) for p in payload["parts"].values())

    def missing(self, payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {name: p for name, p in payload["parts"].items()
                if not self.has_blob(p["digest"], p["size"])}

    @staticmethod
    def check_manifest(payload: dict[str, Any]) -> None:
        """The image's digest is its parts' and cmdline's (image_manifest.py), and its parts
        are well formed: else one hash would not name every byte a VM boots from."""
        name = payload.get("name") or str(payload.get("digest", "?"))[:12]
        problem = parts_problem(payload.get("parts"))
        if problem is not None:
            raise ImageError(f"image {name}: parts: {problem}", "parts")
        if payload.get("digest") != image_digest(payload["parts"], payload.get("cmdline", "")):
            raise ImageError(f"image {name}: its digest is not the digest of its parts and "
                             f"cmdline (a forged or corrupted image.add)", "digest")

    def paths(self, payload: dict[str, Any]) -> dict[str, Path]:
        """part -> blob path, for a VMM to boot from. Raises ImageError if one is missing or
        the manifest does not hash to the image's digest."""
        self.check_manifest(payload)
        missing = self.missing(payload)
        if missing:
            part, info = next(iter(missing.items()))
            raise ImageError(f"image {payload.get('name', '?')}: {part} blob "
                             f"{info['digest'][:12]} is not in this node's image store")
        return {name: self.blobs / p["digest"] for name, p in payload["parts"].items()}

    def new_writer(self, limit: int | None = None) -> BlobWriter:
        self.make_dirs()
        return BlobWriter(self.tmp, self.blobs, limit)

    # import ---------------------------------------------------------------------------------
    async def import_files(self, name: str, kernel: Path, initrd: Path | None = None,
                           disk: Path | None = None, cmdline: str = "console=ttyS0",
                           progress: Progress | None = None) -> dict[str, Any]:
        """Copy the files into the store (hashing while copying, in a thread: disks are big)
        and return the image.add payload. Each file is checked before any is copied, so a
        typo in --disk fails at once, not after copying the kernel."""
        if len(cmdline) > MAX_CMDLINE:
            raise ImageError(f"cmdline: at most {MAX_CMDLINE} characters", "cmdline")
        files = {part: path for part, path in zip(PARTS, (kernel, initrd, disk), strict=True)
                 if path is not None}
        for part, path in files.items():
            await asyncio.to_thread(_readable, part, path)
        parts: dict[str, dict[str, Any]] = {}
        for part, path in files.items():
            digest, size = await asyncio.to_thread(self._ingest, part, path, progress)
            parts[part] = {"digest": digest, "size": size}
        return {"digest": image_digest(parts, cmdline), "name": name,
                "size": sum(p["size"] for p in parts.values()), "parts": parts,
                "cmdline": cmdline}

    def _ingest(self, part: str, source: Path, progress: Progress | None) -> tuple[str, int]:
        self.make_dirs()
        writer = self.new_writer()
        try:
            if not writer.fill_by_reflink(source):
                with open(source, "rb") as src:
                    while data := src.read(CHUNK):
                        writer.write(data)
                        if progress is not None:
                            progress(part, writer.size)
            digest = writer.digest
            if self.has_blob(digest, writer.size):  # shared with an image already here
                writer.abort()
                return digest, writer.size
            return writer.commit(), writer.size
        except OSError as exc:
            writer.abort()
            raise ImageError(f"{part}: cannot read {source}: {exc.strerror or exc}",
                             part) from None
        except BaseException:
            writer.abort()
            raise

    # checking and removing ------------------------------------------------------------------
    async def verify(self, payload: dict[str, Any]) -> list[str]:
        """Re-hash every part held here; the parts whose bytes no longer match (each such blob
        is deleted, so it is fetched again rather than booted from)."""
        bad = []
        for name, part in payload["parts"].items():
            path = self.blob_path(part["digest"])
            if not path.exists():
                continue
            digest, size = await asyncio.to_thread(hash_file, path)
            if digest != part["digest"] or size != part["size"]:
                path.unlink(missing_ok=True)
                bad.append(name)
        return bad

    def remove_blobs(self, digests: set[str]) -> int:
        """Delete these blobs (the caller kept those other images still use). Returns how
        many bytes were freed."""
        freed = 0
        for digest in digests:
            path = self.blob_path(digest)
            try:
                freed += path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
        return freed

    def usage(self) -> tuple[int, int]:
        """(blobs, bytes) held."""
        if not self.blobs.exists():
            return 0, 0
        sizes = [p.stat().st_size for p in self.blobs.iterdir() if HEX64.match(p.name)]
        return len(sizes), sum(sizes)

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root if self.root.exists() else self.root.parent).free


def _readable(part: str, path: Path) -> None:
    flag = f"--{part}" if part != "kernel" else "KERNEL"
    if not path.is_file():
        what = "does not exist" if not path.exists() else "is not a regular file"
        raise ImageError(f"{part} ({flag}): {path} {what}", part)
    if not os.access(path, os.R_OK):
        raise ImageError(f"{part} ({flag}): {path} is not readable by the node service", part)
