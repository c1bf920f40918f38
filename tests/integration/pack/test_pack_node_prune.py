"""The pack part prunes the build cache on a schedule, with the real engine's prune_cache on a
real cache directory: layers and cached disks no build used for two weeks go, recent ones stay
(the period is shortened here; the node's is hours)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from waiting import until

from formation.node.pack.builder import real_toolchain
from formation.node.pack.component import PackComponent
from formation.pack.build.diskchain import DiskCache
from tests.integration.pack.pack_node import pack_node

OLD = "a" * 24
NEW = "b" * 24


def layer(cache: Path, name: str, age_s: float) -> None:
    (cache / "l" / name).mkdir(parents=True)
    (cache / "l" / name / "file").write_text("x")
    (cache / "l" / f"{name}.json").write_text("{}")
    disks = DiskCache(cache).dir
    disks.mkdir(parents=True, exist_ok=True)
    (disks / f"{name}.img").write_bytes(b"\0" * 4096)
    when = time.time() - age_s
    for path in (cache / "l" / f"{name}.json", disks / f"{name}.img"):
        os.utime(path, (when, when))


async def test_the_pack_part_prunes_what_no_build_used_for_long(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    layer(cache, OLD, 30 * 86400)
    layer(cache, NEW, 60)
    (cache / "d" / "v0").mkdir()  # an older recipe's disks: never a parent again
    disks = DiskCache(cache).dir
    monkeypatch.setattr(PackComponent, "prune_every_s", 0.2)
    toolchain = real_toolchain(cache, "http://deb.debian.org/debian")
    async with pack_node(tmp_path / "node", toolchain) as node:
        part = node.parts.pack
        assert isinstance(part, PackComponent)

        async def pruned() -> bool:
            return not (cache / "l" / OLD).exists() and not (disks / f"{OLD}.img").exists()

        await until(pruned, 20, what="the old layer and its disk pruned")
        assert not (cache / "d" / "v0").exists()
        assert part.pruned >= 2
        assert (cache / "l" / NEW / "file").exists() and (disks / f"{NEW}.img").exists()
