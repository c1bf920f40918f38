"""The disk image, made one layer at a time and cached per layer stack.

Why: writing the whole ~400 MB ext4 disk again (mkfs.ext4 -d over the merged layers) was
nearly all of a rebuild (issue 17: 2-3 s of a ~3 s rebuild whose changed step took 0.2 s).
Now the disk of a stack is the disk of the stack below it with one more layer applied by
debugfs (debugfs_script.py), and the disks of some stacks are kept in the cache (cache_dir/d/):
the base's, and the one below a Formfile's last step, so an edit of the last line copies that
disk (a sparse copy) and applies two small layers (the step and system setup).

Same bytes wherever it runs: the disk of a stack is DEFINED as this chain (an empty
filesystem with fixed parameters, then each layer from the base up, grown by resize2fs when a
layer would not fit, then a forced e2fsck that discards the free blocks), never as mkfs -d over
the merged tree, and every link of it is deterministic (libext2fs with a fixed clock, sorted
entries, clamped times). So a disk made from a cached parent disk is byte for byte the disk
made from the base up, on this builder or another with the same e2fsprogs and the same
layers: the image digest does not depend on what a builder had cached.

Discarding the free blocks at the end matters beyond size: a file a later layer removes or
replaces (apt lists, SSH host keys a package generated, a secret a RUN deleted) was written to
the disk by an earlier link of the chain; the discard punches its old blocks out of the image
file, so the shipped image holds only what the merged tree shows, as a mkfs -d disk did."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import struct
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from formation.pack.build.debugfs_script import layer_script
from formation.pack.build.model import BuildError, clip
from formation.pack.build.stack import Stack

MIB = 1 << 20
KEEP_DISKS = 6  # cached disks besides the bases (the least recently used beyond go)
SLACK_MIB = 256  # free space a disk gets beyond what its layers need
# Debian's ext4 defaults, spelled out (the host's /etc/mke2fs.conf is not read): the same
# filesystem from every builder. No orphan_file, which kernels before 5.15 cannot mount.
FEATURES = ("ext_attr,has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,"
            "extra_isize")
# Bump when what a disk of a layer stack holds changes (features, how layers are applied):
# the cached disks of another recipe are never a parent (they live in another directory).
RECIPE = 2


@dataclass(frozen=True)
class Link:
    key: str  # the layer's full key (the disk of the stack up to it is cached under it)
    path: Path  # the layer's tree


@dataclass(frozen=True)
class Geometry:
    block_size: int
    blocks: int
    free_blocks: int
    inodes: int
    free_inodes: int
    blocks_per_group: int
    inodes_per_group: int


def geometry(disk: Path) -> Geometry:
    """The superblock's counts (libext2fs writes them on close)."""
    with disk.open("rb") as f:
        f.seek(1024)
        sb = f.read(1024)
    inodes, blocks_lo, _, free_lo, free_inodes = struct.unpack_from("<5I", sb, 0)
    log_block = struct.unpack_from("<I", sb, 0x18)[0]
    bpg, _, ipg = struct.unpack_from("<3I", sb, 0x20)
    blocks_hi, _, free_hi = struct.unpack_from("<3I", sb, 0x150)
    return Geometry(1024 << log_block, blocks_lo | blocks_hi << 32, free_lo | free_hi << 32,
                    inodes, free_inodes, bpg, ipg)


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


class DiskCache:
    """cache_dir/d/vRECIPE/KEY24.img: the disk of the layer stack whose top layer has that key.

    Written without fsync (a build must not wait for 400 MB to reach the platter), so a
    cached disk is used only in the boot it was written in (KEY24.boot holds the boot id) or
    once a background thread synced it (KEY24.synced): after a crash a half-flushed disk is
    never the parent of an image."""

    def __init__(self, root: Path) -> None:
        self.top = root / "d"
        self.dir = self.top / f"v{RECIPE}"

    def path(self, key: str) -> Path:
        return self.dir / f"{key[:24]}.img"

    def has(self, key: str) -> bool:
        disk = self.path(key)
        if not disk.is_file():
            return False
        if disk.with_suffix(".synced").exists():
            return True
        try:
            return disk.with_suffix(".boot").read_text() == boot_id()
        except OSError:
            return False

    def keep(self, work: Path, key: str, base: bool) -> None:
        """Copies `work` in (complete or not at all: a rename of a finished copy)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{key[:24]}.tmp"
        _copy(work, tmp)
        disk = self.path(key)
        for suffix in (".synced", ".boot"):
            disk.with_suffix(suffix).unlink(missing_ok=True)
        os.replace(tmp, disk)
        disk.with_suffix(".boot").write_text(boot_id())
        if base:
            disk.with_suffix(".base").touch()
        threading.Thread(target=_sync, args=(disk,), daemon=True).start()
        self.evict()

    def evict(self) -> None:
        disks = [p for p in self.dir.glob("*.img") if not p.with_suffix(".base").exists()]
        disks.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        for old in disks[KEEP_DISKS:]:
            _remove(old)

    def prune(self, live: set[str], cutoff: float) -> int:
        """Removes disks whose layer is gone (`live`: KEY24 of the layers kept) or that no
        build used since `cutoff`; returns how many."""
        removed = 0
        for old in self.top.iterdir() if self.top.is_dir() else ():
            if old != self.dir:  # another recipe's disks, or files of an older layout
                removed += 1
                if old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    old.unlink(missing_ok=True)
        for disk in self.dir.glob("*.img") if self.dir.is_dir() else ():
            if disk.stem not in live or disk.stat().st_mtime < cutoff:
                _remove(disk)
                removed += 1
        for tmp in self.dir.glob(".*.tmp") if self.dir.is_dir() else ():
            tmp.unlink(missing_ok=True)
        return removed


def _remove(disk: Path) -> None:
    for suffix in (".img", ".boot", ".synced", ".base"):
        disk.with_suffix(suffix).unlink(missing_ok=True)


def _sync(disk: Path) -> None:
    """Flushes a cached disk in the background, then marks it safe to use after a reboot."""
    try:
        fd = os.open(disk, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        disk.with_suffix(".synced").touch()
    except OSError:
        pass  # removed meanwhile (evicted, pruned): nothing to mark


def _copy(src: Path, dst: Path) -> None:
    """A sparse copy: only the data extents (SEEK_DATA/SEEK_HOLE), each by copy_file_range (a
    reflink where the filesystem has them); the holes stay holes."""
    with src.open("rb") as fin, dst.open("wb") as fout:
        fi, fo = fin.fileno(), fout.fileno()
        size = os.fstat(fi).st_size
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fi, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole after pos
                break
            end = os.lseek(fi, start, os.SEEK_HOLE)
            _copy_range(fi, fo, start, end)
            pos = end
        fout.truncate(size)


def _copy_range(fi: int, fo: int, start: int, end: int) -> None:
    offset = start
    while offset < end:
        try:
            n = os.copy_file_range(fi, fo, end - offset, offset, offset)
        except OSError as exc:  # across filesystems, or a filesystem without it
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            n = os.pwrite(fo, os.pread(fi, min(end - offset, 1 << 20), offset), offset)
        if n == 0:
            raise OSError(f"short copy at {offset}")
        offset += n


def _move(src: Path, dst: Path) -> None:
    """A rename, or a sparse copy when `dst` is on another filesystem."""
    try:
        os.rename(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy(src, dst)
        src.unlink()


async def _tool(argv: Sequence[str], epoch: str, what: str, ok: Sequence[int] = (0,)) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LANG": "C.UTF-8",
           "E2FSPROGS_FAKE_TIME": epoch, "E2FSCK_TIME": epoch, "MKE2FS_CONFIG": "/dev/null"}
    # eatmydata: no fsync. The disk is scratch until the image store copies it (and syncs its
    # copy); a cached disk is trusted after a crash only once it was synced (DiskCache).
    nosync = ["eatmydata"] if shutil.which("eatmydata") else []
    proc = await asyncio.create_subprocess_exec(
        *nosync, *argv, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await asyncio.shield(proc.wait())
    text = err.decode(errors="replace")
    if proc.returncode not in ok:
        raise BuildError(f"disk image: {what} failed with status {proc.returncode}: "
                         f"{clip(text.strip().splitlines()[-1] if text.strip() else '')}")
    return out.decode(errors="replace") + text


async def _debugfs(disk: Path, commands: Path, epoch: str) -> None:
    text = await _tool(["debugfs", "-w", "-f", str(commands), str(disk)], epoch, "debugfs")
    # debugfs exits 0 whatever a command did; its complaints are the lines that are neither
    # the banner, nor an echoed command, nor "Allocated inode".
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("debugfs ", "debugfs:", "Allocated inode")):
            continue
        raise BuildError(f"disk image: debugfs: {clip(line)}")


async def _empty(disk: Path, base: Link, epoch: str) -> None:
    """The filesystem the chain starts from, sized for the base layer (grown later as layers
    need): fixed UUID and hash seed (from the base's key), the defaults of this e2fsprogs
    release rather than the host's /etc/mke2fs.conf (MKE2FS_CONFIG=/dev/null)."""
    used, files = await asyncio.to_thread(_usage, base.path)
    size_mib = used * 5 // 4 // MIB + SLACK_MIB
    fs_uuid = str(uuid.UUID(base.key[:32]))
    await _tool(["mkfs.ext4", "-q", "-F", "-b", "4096", "-I", "256", "-O", FEATURES,
                 "-L", "root", "-U", fs_uuid,
                 "-N", str(files * 2 + 65536), "-E", f"hash_seed={fs_uuid},root_owner=0:0",
                 str(disk), f"{size_mib}M"], epoch, "mkfs.ext4")


def _usage(tree: Path) -> tuple[int, int]:
    used, files = 0, 0
    for dirpath, dirnames, filenames in os.walk(tree):
        files += len(dirnames) + len(filenames)
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            used += -(-st.st_size // 4096) * 4096
        used += 4096 * len(dirnames)
    return used, files


async def _grow_for(disk: Path, need_bytes: int, need_inodes: int, epoch: str) -> None:
    g = await asyncio.to_thread(geometry, disk)
    free = g.free_blocks * g.block_size
    if free >= need_bytes * 5 // 4 + 64 * MIB and g.free_inodes >= need_inodes + 1024:
        return
    group_bytes = g.blocks_per_group * g.block_size
    add = need_bytes * 5 // 4 + SLACK_MIB * MIB
    short_inodes = need_inodes + 1024 - g.free_inodes
    if short_inodes > 0:
        add = max(add, -(-short_inodes // g.inodes_per_group) * group_bytes)
    size_mib = -(-(g.blocks * g.block_size + add) // MIB)
    await _tool(["resize2fs", "-f", str(disk), f"{size_mib}M"], epoch, "resize2fs")


async def apply_layer(disk: Path, layer: Path, below: Stack, scratch: Path,
                      epoch: str) -> None:
    """Makes the disk of `below` (what it holds) into the disk of `below` + `layer`."""
    values = scratch / "values"
    await asyncio.to_thread(_fresh, values)
    script = await asyncio.to_thread(layer_script, layer, below, values, int(epoch))
    commands = scratch / "commands"
    await asyncio.to_thread(commands.write_bytes, script.text())
    await _grow_for(disk, script.bytes_needed, script.inodes_needed, epoch)
    await _debugfs(disk, commands, epoch)


def _fresh(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


async def make_disk(chain: Sequence[Link], keep: int, cache: DiskCache, scratch: Path,
                    disk: Path, disk_gb: int | None, epoch: str,
                    on_line: Callable[[str], None]) -> None:
    """Writes the disk of `chain` (base first) to `disk`, starting from the deepest cached
    disk of a prefix of it; keeps the disks of chain[0] and chain[keep] in the cache."""
    work = scratch / "disk.img"
    start = next((i for i in range(len(chain) - 1, -1, -1) if cache.has(chain[i].key)), -1)
    if start > 0 and cache.has(chain[0].key):  # the base's disk is in use too (prune)
        await asyncio.to_thread(os.utime, cache.path(chain[0].key))
    if start >= 0:
        on_line(f"disk image: from the cached disk of step {start}")
        await asyncio.to_thread(_copy, cache.path(chain[start].key), work)
        await asyncio.to_thread(os.utime, cache.path(chain[start].key))
    else:
        on_line("disk image: a new filesystem for the base")
        await _empty(work, chain[0], epoch)
    for i in range(start + 1, len(chain)):
        below = Stack([link.path for link in reversed(chain[:i])])
        on_line(f"disk image: adding layer {i} of {len(chain) - 1}")
        await apply_layer(work, chain[i].path, below, scratch, epoch)
        if i in (0, keep):
            await asyncio.to_thread(cache.keep, work, chain[i].key, i == 0)
    await finish_disk(work, disk_gb, epoch)
    await asyncio.to_thread(_move, work, disk)


async def finish_disk(disk: Path, disk_gb: int | None, epoch: str) -> None:
    """Discards the free blocks (e2fsck -E discard punches them out of the file) and gives
    the filesystem the DISK size, if the Formfile has one."""
    await _tool(["e2fsck", "-f", "-y", "-E", "discard", str(disk)], epoch, "e2fsck",
                ok=(0, 1))
    if not disk_gb:
        return
    g = await asyncio.to_thread(geometry, disk)
    want = disk_gb * 1024 * MIB
    need = (g.blocks - g.free_blocks) * g.block_size * 5 // 4 + SLACK_MIB * MIB
    if want < need:
        raise BuildError(f"the image needs {-(-need // MIB)} MiB, more than DISK allows "
                         f"({disk_gb * 1024} MiB)")
    if want != g.blocks * g.block_size:
        await _tool(["resize2fs", "-f", str(disk), f"{disk_gb * 1024}M"], epoch, "resize2fs")
