"""diskchain + debugfs_script on hand-made overlayfs layers (no base system needed): a lower
layer written onto an empty filesystem, then an upper layer with a whiteout, an opaque
directory, a file replacing a directory, xattrs (a file capability) and a hard link; read back
with debugfs, checked by e2fsck, and the same chain made twice gives the same bytes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from formation.pack.build import diskchain
from formation.pack.build.stack import Stack

pytestmark = pytest.mark.root
EPOCH = "1700000000"
CAP = bytes.fromhex("0100000200200000000000000000000000000000")  # cap_net_raw+ep


def need_root() -> None:
    if os.geteuid() != 0 or shutil.which("debugfs") is None:
        pytest.skip("whiteouts and trusted.* xattrs need root; debugfs needs e2fsprogs")


def lower_layer(root: Path) -> Path:
    (root / "etc" / "old").mkdir(parents=True)
    (root / "etc" / "old" / "a").write_text("a")
    (root / "etc" / "keep").write_text("keep")
    (root / "opaque" / "sub").mkdir(parents=True)
    (root / "opaque" / "sub" / "gone").write_text("gone")
    (root / "becomes-file").mkdir()
    (root / "becomes-file" / "x").write_text("x")
    return root


def upper_layer(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    os.mknod(root / "etc" / "old", 0o600 | 0o020000, os.makedev(0, 0))  # whiteout
    (root / "opaque").mkdir()
    os.setxattr(root / "opaque", "trusted.overlay.opaque", b"y")
    (root / "opaque" / "new").write_text("new")
    (root / "becomes-file").write_text("file now")
    ping = root / "ping"
    ping.write_bytes(b"\x7fELF")
    ping.chmod(0o755)
    os.setxattr(ping, "security.capability", CAP)
    os.setxattr(ping, "trusted.overlay.origin", b"host-only")
    os.link(ping, root / "ping-link")
    return root


def debugfs(disk: Path, command: str) -> str:
    return subprocess.run(["debugfs", "-R", command, str(disk)], capture_output=True,
                          text=True, check=True).stdout


async def chain(tmp: Path, name: str) -> Path:
    lower, upper = tmp / "l1", tmp / "l2"
    links = [diskchain.Link("a" * 64, lower), diskchain.Link("b" * 64, upper)]
    scratch = tmp / f"scratch-{name}"
    scratch.mkdir()
    cache = diskchain.DiskCache(tmp / f"cache-{name}")
    disk = tmp / f"{name}.img"
    await diskchain.make_disk(links, 0, cache, scratch, disk, None, EPOCH, lambda _: None)
    return disk


def test_layers_applied_to_a_disk(tmp_path: Path) -> None:
    need_root()
    lower_layer(tmp_path / "l1")
    upper_layer(tmp_path / "l2")
    disk = asyncio.run(chain(tmp_path, "one"))
    root = debugfs(disk, "ls -l /")
    assert "becomes-file" in root
    assert debugfs(disk, "cat /becomes-file") == "file now"
    assert "old" not in debugfs(disk, "ls /etc") and "keep" in debugfs(disk, "ls /etc")
    listing = debugfs(disk, "ls /opaque")
    assert "new" in listing and "sub" not in listing
    assert "security.capability" in debugfs(disk, "ea_list /ping")
    assert "trusted.overlay" not in debugfs(disk, "ea_list /ping")
    assert "Links: 2" in debugfs(disk, "stat /ping")
    fsck = subprocess.run(["e2fsck", "-fn", str(disk)], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    # the chain again, from the cached disk of the lower layer: the same bytes
    again = asyncio.run(chain(tmp_path, "two"))
    assert hashlib.sha256(again.read_bytes()).digest() == \
        hashlib.sha256(disk.read_bytes()).digest()


def test_the_stack_view_follows_overlayfs_rules(tmp_path: Path) -> None:
    need_root()
    view = Stack([upper_layer(tmp_path / "l2"), lower_layer(tmp_path / "l1")])
    assert view.find("etc/old") is None and view.find("etc/old/a") is None
    assert view.listdir("opaque") == ["new"]
    assert view.listdir("etc") == ["keep"]
    found = view.find("becomes-file/x")
    assert found is None


def test_a_layer_larger_than_the_free_space_grows_the_disk_and_disk_sets_its_size(
        tmp_path: Path) -> None:
    need_root()
    lower_layer(tmp_path / "l1")
    (tmp_path / "l2").mkdir()
    with (tmp_path / "l2" / "big").open("wb") as f:  # 600 MiB apparent, a few blocks written
        f.truncate(600 << 20)
        f.write(b"head")
    links = [diskchain.Link("c" * 64, tmp_path / "l1"), diskchain.Link("d" * 64, tmp_path / "l2")]
    (tmp_path / "s").mkdir()
    cache = diskchain.DiskCache(tmp_path / "cache")
    disk = tmp_path / "disk.img"
    asyncio.run(diskchain.make_disk(links, 0, cache, tmp_path / "s", disk, 5, EPOCH,
                                    lambda _: None))
    assert "Size: 629145600" in debugfs(disk, "stat /big")
    assert disk.stat().st_size == 5 << 30
    g = diskchain.geometry(disk)
    assert g.blocks * g.block_size == 5 << 30
    fsck = subprocess.run(["e2fsck", "-fn", str(disk)], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert diskchain.geometry(cache.path("c" * 64)).blocks * 4096 < 600 << 20  # it grew
