"""The layer cache: one directory tree per base system and per build step, like Docker's.

Why overlayfs layers rather than snapshots (copies of the whole tree per step): a step's layer
holds only what that step changed (a COPY of one file is one file, not another 500 MB tree), a
layer is made by mounting, not copying, and a cached prefix of the Formfile costs nothing to
reuse. ext4 (the usual data filesystem) has no cheap reflink snapshots, and btrfs/ZFS
snapshots would tie the builder to one filesystem; overlayfs only needs the cache on a
filesystem that can be an upper layer.

A layer's key is the SHA-256 of its parent's key and the step (its directive and arguments and
the script the builder runs for it, not its line number: adding a comment above does not
rebuild anything; for COPY also the digest of the files it reads). So a change to one line
changes the keys of that step and every step after it, and nothing before. Layout under cache_dir:

    l/KEY24/        the layer's tree (an overlayfs upper directory: whiteouts included)
    l/KEY24.json    written last: the layer is complete (label, line, when); its mtime is
                    when a build last used the layer (prune_cache removes long-unused ones)
    d/vN/KEY24.img  the ext4 disk of the layer stack topped by that layer (diskchain.py)
    apt/            the apt archive cache (.deb files), shared by every base and INSTALL
    work/           scratch (a build's staging directories), emptied by each build
    lock            one build at a time per cache (flock)
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

KEY_CHARS = 24  # 96 bits: plenty for one cache, and short enough for many layers in a mount


def key_of(parent: str, record: dict[str, Any]) -> str:
    doc = json.dumps([parent, record], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()


class LayerCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.layers = root / "l"
        self.apt = root / "apt"

    def rel(self, key: str) -> str:
        """The layer's directory relative to the cache root (as overlay mounts name it)."""
        return f"l/{key[:KEY_CHARS]}"

    def path(self, key: str) -> Path:
        return self.root / self.rel(key)

    def has(self, key: str) -> bool:
        return (self.layers / f"{key[:KEY_CHARS]}.json").exists() and self.path(key).is_dir()

    def touch(self, key: str) -> None:
        """Marks a layer used now (prune keeps what was used recently)."""
        os.utime(self.layers / f"{key[:KEY_CHARS]}.json")

    def prune(self, max_age_s: float) -> int:
        """Removes the layers no build used for `max_age_s` (bases too: the next build makes
        what it needs again); returns how many. Call it while no build runs on this cache
        (under `locked`)."""
        if not self.layers.is_dir():
            return 0
        cutoff = time.time() - max_age_s
        removed = 0
        for marker in self.layers.glob("*.json"):
            if marker.stat().st_mtime < cutoff:
                marker.unlink()
                shutil.rmtree(self.layers / marker.stem, ignore_errors=True)
                removed += 1
        return removed

    def prepare(self) -> None:
        for d in (self.layers, self.apt):
            d.mkdir(parents=True, exist_ok=True)

    def commit(self, key: str, tree: Path, meta: dict[str, Any]) -> None:
        """Moves a finished step's tree into the cache (a rename; a copy only if the scratch
        directory is on another filesystem), then marks it complete."""
        target = self.path(key)
        if target.exists():  # a stale, incomplete layer of an interrupted build
            shutil.rmtree(target)
        try:
            os.rename(tree, target)
        except OSError:
            shutil.copytree(tree, target, symlinks=True)
            shutil.rmtree(tree)
        marker = self.layers / f"{key[:KEY_CHARS]}.json"
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps({**meta, "key": key, "at": int(time.time())}))
        os.replace(tmp, marker)

    @asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        """Held for a whole build: two builds on one cache would fight over the apt cache and
        over half-made layers. A waiting build waits in a thread, not on the loop."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
