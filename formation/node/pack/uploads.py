"""Build contexts larger than one request: uploaded in chunks, each a request under the API's
1 MiB body limit, into a file on the node, then named by a build (PackBuildStart.upload).

Why chunks of JSON rather than one streamed body: the server reads every body whole, under
one limit, so no route can make it buffer more than that; a chunk route keeps that property,
and the upload needs nothing the API does not already have (signed requests, audiences,
one-line errors). What bounds a hostile member:
  - the size is declared first (at most MAX_UPLOAD_BYTES) and reserved against a node-wide
    budget (MAX_TOTAL_BYTES over every open upload): the disk an upload may use is known
    before a byte arrives, and a chunk past the declared size is refused;
  - one key holds at most MAX_OPEN_PER_KEY open uploads; an upload idle for idle_s is
    dropped (checked on every call), and consumed by the build that names it;
  - chunks arrive in order (offset = bytes received so far), hashed as they come: a build may
    name only a complete upload whose SHA-256 is the declared one;
  - an upload is only its uploader's: another key asking for it is told there is none.
Memory: one chunk at a time per request, and a hash state per upload."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from formation.api.pack_models import MAX_UPLOAD_BYTES
from formation.node.pack.context import ContextError
from formation.node.upload_chunk import chunk_bytes

MAX_TOTAL_BYTES = 1024 * 1024 * 1024
MAX_OPEN_PER_KEY = 2
IDLE_S = 600.0


class UploadError(ContextError):
    """`status`: 400 bad chunk, 404 no such upload, 409 out of order, 413 too large, 429 too
    many open, 503 the node's upload budget is spent."""


@dataclass
class Upload:
    id: str
    owner: str  # "local" or the uploader's key hex
    size: int
    sha256: str
    path: Path
    received: int = 0
    touched: float = field(default_factory=time.monotonic)
    hasher: Any = field(default_factory=hashlib.sha256)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def complete(self) -> bool:
        return self.received == self.size


class Uploads:
    idle_s = IDLE_S

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.open: dict[str, Upload] = {}

    def reset(self) -> None:
        """Blocking: at the node's start, what a previous run left goes."""
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)

    async def expire(self) -> None:
        cutoff = time.monotonic() - self.idle_s
        for upload in [u for u in self.open.values() if u.touched < cutoff]:
            await self.drop(upload)

    async def drop(self, upload: Upload) -> None:
        self.open.pop(upload.id, None)
        await asyncio.to_thread(upload.path.unlink, True)

    async def start(self, owner: str, size: int, sha256: str) -> Upload:
        await self.expire()
        if size > MAX_UPLOAD_BYTES:
            raise UploadError(f"size: {size} bytes; an uploaded context is at most "
                              f"{MAX_UPLOAD_BYTES >> 20} MiB packed (build a larger one from "
                              f"a path on the node)", "size", 413)
        if sum(u.owner == owner for u in self.open.values()) >= MAX_OPEN_PER_KEY:
            raise UploadError(f"upload: this key has {MAX_OPEN_PER_KEY} uploads open here; "
                              f"finish or cancel one", "upload", 429)
        if sum(u.size for u in self.open.values()) + size > MAX_TOTAL_BYTES:
            raise UploadError("upload: the node's space for uploads is taken; try again "
                              "later", "upload", 503)
        upload_id = secrets.token_hex(8)
        upload = Upload(upload_id, owner, size, sha256.lower(), self.dir / upload_id)
        await asyncio.to_thread(upload.path.write_bytes, b"")
        self.open[upload_id] = upload
        return upload

    async def get(self, owner: str, upload_id: str) -> Upload:
        await self.expire()
        upload = self.open.get(upload_id)
        if upload is None or upload.owner != owner:  # another key's: as if there were none
            raise UploadError(f"upload: no open upload {upload_id} of yours on this node",
                              "upload", 404)
        return upload

    async def chunk(self, owner: str, upload_id: str, offset: int, data: str) -> Upload:
        upload = await self.get(owner, upload_id)
        async with upload.lock:
            raw = chunk_bytes(upload.received, upload.size, offset, data, UploadError)
            await asyncio.to_thread(_append, upload.path, raw)
            upload.hasher.update(raw)
            upload.received += len(raw)
            upload.touched = time.monotonic()
        return upload

    async def take(self, owner: str, upload_id: str, dest: Path) -> Path:
        """A complete upload, moved to `dest` for a build (no longer open)."""
        upload = await self.get(owner, upload_id)
        async with upload.lock:
            if not upload.complete:
                raise UploadError(f"upload: {upload.received} of {upload.size} bytes received;"
                                  f" send the rest first", "upload")
            if upload.hasher.hexdigest() != upload.sha256:
                await self.drop(upload)
                raise UploadError("upload: the bytes received do not have the declared "
                                  "SHA-256 (the upload is dropped)", "upload")
            self.open.pop(upload.id, None)
            dest.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(shutil.move, upload.path, dest)
        return dest


def _append(path: Path, raw: bytes) -> None:
    with path.open("ab") as f:
        f.write(raw)
