"""Image files uploaded by tenants (account keys over the signed TCP API), in chunks, straight
into this node's image store: how a person who owns no node brings a kernel, initrd or disk.

The design is the pack uploads' (node/pack/uploads.py), with the blob writer of the image store
(blob.py: a temp file in the store, hashed as written, renamed to its digest only once whole and
verified). What bounds a hostile account key:
  - the size is declared first and reserved: against the node's budget for open uploads (and
    its free disk), against the account's budget (ACCOUNT_BYTES) of open uploads plus stored
    blobs that no image names yet, and, when the account has a disk quota, against that quota
    less the bytes of the account's images (once named, uploads count there: naming them does
    not lift the bound);
  - one key holds at most MAX_OPEN_PER_KEY open uploads, the node MAX_OPEN; an upload idle for
    idle_s is dropped (checked on every call);
  - chunks arrive in order (offset = bytes received so far); a chunk past the declared size is
    refused; the chunk completing it verifies the SHA-256, else the upload is dropped;
  - an upload is only its uploader's key's: another key is told there is none;
  - a stored blob that no image.add of the network names within unreferenced_s is removed
    (`sweep`), so uploads cannot fill the disk with bytes no image uses. Which blobs wait for an
    image.add (and whose they are, for the budget) is kept in `tenant-blobs.json` beside the
    store, so a restart does not forget them.
Memory: one chunk per request, and a hash state per upload."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from formation.errors import FormationError
from formation.node.upload_chunk import chunk_bytes
from formation.node.vmm.images.blob import BlobMismatch, BlobWriter, TooLarge
from formation.node.vmm.images.store import ImageStore

GIB = 1024**3
MAX_OPEN_PER_KEY = 2
MAX_OPEN = 32
NODE_OPEN_BYTES = 64 * GIB  # every open upload together
ACCOUNT_BYTES = 16 * GIB  # one account's open uploads + stored blobs no image names yet
FREE_RESERVE = 1 * GIB  # an upload never takes the node's last free GiB
IDLE_S = 600.0
UNREFERENCED_S = 3600.0
INDEX = "tenant-blobs.json"


class BlobUploadError(FormationError):
    """`status`: 400 bad chunk or digest, 404 no such upload, 409 out of order, 413 over a
    size or budget, 429 too many open, 503 the node's upload space is taken."""

    def __init__(self, message: str, field: str, status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


@dataclass
class BlobUpload:
    id: str
    key: str  # the uploader's key hex: only it sees the upload
    account: str
    size: int
    sha256: str
    writer: BlobWriter
    received: int = 0
    touched: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(frozen=True)
class Stored:
    """A blob an account uploaded that no image.add names yet."""

    account: str
    size: int
    at: float  # wall time it was stored


class TenantBlobs:
    idle_s = IDLE_S
    unreferenced_s = UNREFERENCED_S

    def __init__(self, store: ImageStore, wall: Callable[[], float] = time.time) -> None:
        self.store = store
        self.wall = wall
        self.index = store.root / INDEX
        self.open: dict[str, BlobUpload] = {}
        self.waiting: dict[str, Stored] = {}
        # checks and reservation are one step: concurrent starts (an account's 8 keys at once)
        # must not all pass the budgets before any of them is counted
        self.starting = asyncio.Lock()

    def load(self) -> None:
        """Blocking: at the node's start (after the store's `open()` dropped the temp files of
        uploads a previous run left open)."""
        try:
            raw = json.loads(self.index.read_text())
        except (OSError, ValueError):
            raw = {}
        self.waiting = {d: Stored(str(v["account"]), int(v["size"]), float(v["at"]))
                        for d, v in raw.items() if isinstance(v, dict) and self.store.has_blob(d)}

    def _save(self) -> None:
        tmp = self.index.with_suffix(".tmp")
        tmp.write_text(json.dumps({d: {"account": s.account, "size": s.size, "at": s.at}
                                   for d, s in self.waiting.items()}, sort_keys=True))
        os.replace(tmp, self.index)

    def account_bytes(self, account: str) -> int:
        return (sum(u.size for u in self.open.values() if u.account == account)
                + sum(s.size for s in self.waiting.values() if s.account == account))

    # the upload ------------------------------------------------------------------------------
    async def expire(self) -> None:
        cutoff = time.monotonic() - self.idle_s
        for upload in [u for u in self.open.values()
                       if u.touched < cutoff and not u.lock.locked()]:  # not mid-chunk
            await self.drop(upload)

    async def cancel(self, key: str, upload_id: str) -> BlobUpload:
        """Drop one of `key`'s open uploads, never in the middle of a chunk's write."""
        upload = await self.get(key, upload_id)
        async with upload.lock:
            await self.drop(upload)
        return upload

    async def drop(self, upload: BlobUpload) -> None:
        self.open.pop(upload.id, None)
        await asyncio.to_thread(upload.writer.abort)

    async def start(self, key: str, account: str, quota_bytes: int | None, size: int,
                    sha256: str, owned: int = 0) -> BlobUpload | None:
        """An open upload, or None when the store holds the blob already. `quota_bytes`: the
        account's disk quota, which also bounds `owned`, the bytes of its images."""
        async with self.starting:
            return await self._start(key, account, quota_bytes, size, sha256, owned)

    async def _start(self, key: str, account: str, quota_bytes: int | None, size: int,
                     sha256: str, owned: int) -> BlobUpload | None:
        await self.expire()
        sha256 = sha256.lower()
        if await asyncio.to_thread(self.store.has_blob, sha256, size):
            return None
        used = self.account_bytes(account)
        if used + size > ACCOUNT_BYTES:
            raise BlobUploadError(
                f"size: {size} bytes; account {account} may hold {ACCOUNT_BYTES} bytes of "
                f"uploads no image names yet and has {used} (add the images, or wait for the "
                f"unnamed ones to be removed)", "size", 413)
        if quota_bytes is not None and owned + used + size > quota_bytes:
            raise BlobUploadError(
                f"size: {size} bytes; account {account}'s disk quota is {quota_bytes} bytes, "
                f"its images take {owned} and its uploads no image names yet {used}", "size",
                413)
        if sum(u.key == key for u in self.open.values()) >= MAX_OPEN_PER_KEY:
            raise BlobUploadError(f"upload: this key has {MAX_OPEN_PER_KEY} uploads open here; "
                                  f"finish or cancel one", "upload", 429)
        reserved = sum(u.size - u.received for u in self.open.values())
        free = await asyncio.to_thread(self.store.free_bytes)
        if (len(self.open) >= MAX_OPEN or reserved + size > NODE_OPEN_BYTES
                or reserved + size > free - FREE_RESERVE):
            raise BlobUploadError("upload: the node's space for uploads is taken; try again "
                                  "later or ask another node", "upload", 503)
        writer = await asyncio.to_thread(self.store.new_writer, size)
        upload = BlobUpload(secrets.token_hex(8), key, account, size, sha256, writer)
        self.open[upload.id] = upload
        return upload

    async def get(self, key: str, upload_id: str) -> BlobUpload:
        await self.expire()
        upload = self.open.get(upload_id)
        if upload is None or upload.key != key:  # another key's: as if there were none
            raise BlobUploadError(f"upload: no open upload {upload_id} of this key on this "
                                  f"node", "upload", 404)
        return upload

    async def chunk(self, key: str, upload_id: str, offset: int, data: str) -> BlobUpload:
        """Append a chunk; the one completing the declared size stores the verified blob (the
        upload is then closed: `received == size`)."""
        upload = await self.get(key, upload_id)
        async with upload.lock:
            if upload.id not in self.open:  # dropped while this request waited for the lock
                raise BlobUploadError(f"upload: no open upload {upload_id} of this key on this "
                                      f"node", "upload", 404)
            raw = chunk_bytes(upload.received, upload.size, offset, data, BlobUploadError)
            try:
                await asyncio.to_thread(upload.writer.write, raw)
            except (TooLarge, OSError) as exc:
                await self.drop(upload)
                raise BlobUploadError(f"data: cannot write the upload ({exc}); it is dropped",
                                      "data", 503) from None
            upload.received += len(raw)
            upload.touched = time.monotonic()
            if upload.received == upload.size:
                await self._finish(upload)
        return upload

    async def _finish(self, upload: BlobUpload) -> None:
        self.open.pop(upload.id, None)
        try:
            await asyncio.to_thread(upload.writer.commit, upload.sha256, upload.size)
        except BlobMismatch:  # commit removed the temp file
            raise BlobUploadError("sha256: the bytes received do not have the declared "
                                  "SHA-256 (the upload is dropped)", "sha256") from None
        if upload.sha256 not in self.waiting:
            self.waiting[upload.sha256] = Stored(upload.account, upload.size, self.wall())
            await asyncio.to_thread(self._save)

    async def drop_keys(self, still: Callable[[str], bool]) -> int:
        """Drop the open uploads of keys for which `still(key)` is false (keys of accounts
        just removed, or dropped from their account): at once, not after idle_s."""
        dropped = [u for u in self.open.values() if u.key != "local" and not still(u.key)]
        for upload in dropped:
            async with upload.lock:
                await self.drop(upload)
        return len(dropped)

    # removing what no image names -----------------------------------------------------------
    async def sweep(self, named: set[str], keep: set[str],
                    accounts: set[str] | None = None) -> list[str]:
        """`named`: the part digests of the network's images (such a blob is an image's now,
        cleaned up with it); `keep`: blobs this node holds for other reasons (its own images'
        manifests, instances). Blobs waiting longer than unreferenced_s are deleted, and at
        once those of an account not in `accounts` (removed) when it is given. Returns the
        digests deleted."""
        await self.expire()
        now = self.wall()
        gone, settled = [], []
        for digest, stored in self.waiting.items():
            if digest in named:
                settled.append(digest)
            elif now - stored.at > self.unreferenced_s or (
                    accounts is not None and stored.account != "(local)"
                    and stored.account not in accounts):
                gone.append(digest)
        if not gone and not settled:
            return []
        for digest in gone + settled:
            self.waiting.pop(digest, None)
        doomed = {d for d in gone if d not in keep and d not in named
                  and not any(u.sha256 == d for u in self.open.values())}
        await asyncio.to_thread(self.store.remove_blobs, doomed)
        await asyncio.to_thread(self._save)
        return sorted(doomed)
