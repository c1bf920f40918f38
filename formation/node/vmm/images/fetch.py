"""Fetching an image's missing blobs from other nodes, by digest, and trusting none of them.

Each blob is asked of the peers in order (the node that added the image first: it has every
part), over GET /v1/images/blobs/{digest} signed with this node's key. The body is streamed into
a temp file and hashed as it is written, never held in memory (disks are gigabytes); more bytes
than the part's declared size end the transfer at once. A body whose hash is not the digest is
deleted and the next peer is asked; only a verified blob gets its final name (blob.py)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from formation.api.auth import sign_request
from formation.identity import NodeIdentity
from formation.node.vmm.images.blob import BlobMismatch, BlobWriter, TooLarge
from formation.node.vmm.images.store import ImageError, ImageStore

log = logging.getLogger(__name__)

BLOB_PATH = "/v1/images/blobs/{digest}"
CHUNK = 1 << 20
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0  # between chunks: a stalled peer is given up, a slow one is not


@dataclass(frozen=True)
class Peer:
    """A node that may hold the blob: its key (the request is signed for it) and API address."""

    key: str
    address: str
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.key[:12]


class _Refused(Exception):
    """This peer did not give us the blob; the message says why, for the final error."""


class Fetcher:
    """Brings blobs into `store`. One transfer per digest at a time: a second `ensure` of the
    same image waits for the first instead of downloading the disk twice."""

    def __init__(self, store: ImageStore, identity: NodeIdentity) -> None:
        self.store = store
        self.identity = identity
        self._locks: dict[str, asyncio.Lock] = {}

    async def ensure(self, payload: dict[str, Any], peers: list[Peer]) -> dict[str, Path]:
        """Every part of the image (an image.add payload) in the store, verified; part ->
        path. Raises ImageError with one line when a blob cannot be had from any peer."""
        self.store.check_manifest(payload)  # nothing is fetched for a forged manifest
        for part in payload["parts"].values():
            digest, size = part["digest"], part["size"]
            self.store.blob_path(digest)  # refuses a digest that is not 64 hex
            lock = self._locks.setdefault(digest, asyncio.Lock())
            async with lock:
                if not self.store.has_blob(digest, size):
                    await self._fetch_blob(payload.get("name", payload["digest"][:12]),
                                           digest, size, peers)
        return self.store.paths(payload)

    async def _fetch_blob(self, image: str, digest: str, size: int, peers: list[Peer]) -> None:
        reasons: list[str] = []
        me = self.identity.public_key_hex
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S,
                                        sock_read=READ_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for peer in peers:
                if peer.key == me:
                    continue
                try:
                    await self._from_peer(session, peer, digest, size)
                except _Refused as exc:
                    log.warning("image blob not fetched", extra={"fields": {
                        "image": image, "blob": digest[:12], "peer": peer.label,
                        "reason": str(exc)}})
                    reasons.append(f"from {peer.label} {exc}")
                    continue
                log.info("image blob fetched", extra={"fields": {
                    "image": image, "blob": digest[:12], "peer": peer.label, "bytes": size}})
                return
        if not reasons:
            raise ImageError(f"image {image}: blob {digest[:12]}: no other node with an API "
                             f"address is known to have it")
        raise ImageError(f"image {image}: blob {digest[:12]} {'; '.join(reasons)}, "
                         f"no other node has it")

    async def _from_peer(self, session: aiohttp.ClientSession, peer: Peer, digest: str,
                         size: int) -> None:
        target = BLOB_PATH.format(digest=digest)
        headers = sign_request(self.identity, "GET", target, b"", peer.key)
        try:
            async with session.get(f"http://{peer.address}{target}", headers=headers) as resp:
                if resp.status != 200:
                    raise _Refused(f"answered HTTP {resp.status}")
                if resp.content_length is not None and resp.content_length > size:
                    raise _Refused(f"offered {resp.content_length} bytes, more than the "
                                   f"declared {size} (refused)")
                writer = await asyncio.to_thread(self.store.new_writer, size)
                try:
                    await self._stream(resp, writer)
                    await asyncio.to_thread(writer.commit, digest, size)
                except BaseException:
                    await asyncio.to_thread(writer.abort)
                    raise
        except BlobMismatch:
            raise _Refused("did not match its digest (corrupted transfer)") from None
        except TooLarge:
            raise _Refused(f"sent more than the declared {size} bytes (refused)") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _Refused(f"failed: {type(exc).__name__}: {exc}".rstrip(": ")) from None

    @staticmethod
    async def _stream(resp: aiohttp.ClientResponse, writer: BlobWriter) -> None:
        """Socket reads are small: gather them to CHUNK bytes per write in a thread."""
        pending = bytearray()
        async for chunk in resp.content.iter_any():
            pending += chunk
            if writer.limit is not None and writer.size + len(pending) > writer.limit:
                raise TooLarge(f"more than the declared {writer.limit} bytes")
            if len(pending) >= CHUNK:
                await asyncio.to_thread(writer.write, bytes(pending))
                pending.clear()
        if pending:
            await asyncio.to_thread(writer.write, bytes(pending))
