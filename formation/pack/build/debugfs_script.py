"""One overlayfs layer -> the debugfs commands that make the layers below it, on an ext4 disk,
into the layers below plus this one (what the overlay mount of the stack would show).

Why debugfs and not mounting the disk: no loop device (a builder in a container has none,
and a mount could outlive a crashed build), and libext2fs is deterministic where the kernel's
allocator is not: the same commands on the same disk give the same bytes, so a disk made from
a cached parent disk equals one made from the base up (diskchain.py relies on it).

What a layer entry becomes:
  - a whiteout: the path below is removed (a directory with everything in it);
  - a directory: merged with the one below (only its owner, mode and times are set), or
    created (after removing what was below: a file, or an opaque directory's old contents);
  - a file: written (after removing what was below), its hard links within the layer linked
    to the first name; a symlink, a fifo or a device node: made;
  - every entry: mode, owner, xattrs other than overlayfs's own (trusted.overlay.*), and the
    modification time clamped to SOURCE_DATE_EPOCH (reproducible-builds style: what a RUN
    wrote at build time gets the same time on every builder); access, change and creation
    times are SOURCE_DATE_EPOCH (debugfs's clock, E2FSPROGS_FAKE_TIME).
Sockets are skipped (mkfs.ext4 -d skips them too: a socket on a disk means nothing)."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from formation.pack.build.model import BuildError
from formation.pack.build.stack import Stack, is_opaque, is_whiteout, join

BLOCK = 4096


def quote(text: str) -> str:
    """One debugfs argument (its parser takes "..." with "" for a quote inside)."""
    if "\n" in text or "\r" in text:
        raise BuildError(f"disk image: a file name with a line break is not supported: "
                         f"{text!r}")
    return '"' + text.replace('"', '""') + '"'


def _img(rel: str) -> str:
    return quote("/" + rel)


@dataclass
class Script:
    """The commands, and what they need on the disk (to grow it first when short)."""
    values: Path  # where xattr values are written for `ea_set -f`
    epoch: int
    lines: list[str] = field(default_factory=list)
    bytes_needed: int = 0
    inodes_needed: int = 0
    links: dict[tuple[int, int], tuple[str, int]] = field(default_factory=dict)
    value_count: int = 0

    def text(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode("utf-8", "surrogateescape")

    def remove(self, below: Stack, rel: str) -> None:
        found = below.find(rel)
        if found is None:
            return
        if stat.S_ISDIR(found[1].st_mode):
            for child, is_dir in below.walk(rel):
                self.lines.append(f"{'rmdir' if is_dir else 'rm'} {_img(child)}")
            self.lines.append(f"rmdir {_img(rel)}")
        else:
            self.lines.append(f"rm {_img(rel)}")

    def attrs(self, rel: str, host: Path, st: os.stat_result, mode: bool = True,
              made: bool = True) -> None:
        """`made`: the inode was just made (its times are the epoch already); otherwise it is a
        directory from below whose time this layer may have changed."""
        target = _img(rel)
        if mode:
            self.lines.append(f"sif {target} mode 0{st.st_mode:o}")
        if st.st_uid:
            self.lines.append(f"sif {target} uid {st.st_uid}")
        if st.st_gid:
            self.lines.append(f"sif {target} gid {st.st_gid}")
        mtime = min(int(st.st_mtime), self.epoch)
        if mtime != self.epoch or not made:
            self.lines.append(f"sif {target} mtime @{mtime}")
        for name in sorted(os.listxattr(host, follow_symlinks=False)):
            if name.startswith("trusted.overlay."):
                continue
            value = os.getxattr(host, name, follow_symlinks=False)
            self.value_count += 1
            path = self.values / f"v{self.value_count}"
            path.write_bytes(value)
            self.lines.append(f"ea_set -f {quote(str(path))} {target} {quote(name)}")

    def finish(self) -> None:
        for rel, count in self.links.values():
            if count > 1:
                self.lines.append(f"sif {_img(rel)} links_count {count}")


def layer_script(layer: Path, below: Stack, values: Path, epoch: int) -> Script:
    """The commands applying `layer` onto a disk holding exactly what `below` shows. Reads
    the trees: call it off the loop."""
    script = Script(values=values, epoch=epoch)
    root_st = os.lstat(layer)
    if is_opaque(layer):
        for name in below.listdir(""):
            script.remove(below, name)
    script.attrs("", layer, root_st, made=False)
    _walk(script, layer, "", below, fresh=is_opaque(layer))
    script.finish()
    return script


def _walk(script: Script, host_dir: Path, rel: str, below: Stack, fresh: bool) -> None:
    """`fresh`: the directory `rel` was made by this layer, so nothing below shows in it."""
    with os.scandir(host_dir) as it:
        entries = sorted(it, key=lambda e: os.fsencode(e.name))
    for entry in entries:
        child = join(rel, entry.name)
        quote(child)  # refuses a line break, naming the path in the image
        host = Path(entry.path)
        st = entry.stat(follow_symlinks=False)
        mode = st.st_mode
        if is_whiteout(st):
            if not fresh:
                script.remove(below, child)
            continue
        if stat.S_ISSOCK(mode):
            continue
        script.inodes_needed += 1
        if stat.S_ISDIR(mode):
            script.bytes_needed += BLOCK
            under = None if fresh else below.find(child)
            merge = under is not None and stat.S_ISDIR(under[1].st_mode) \
                and not is_opaque(host)
            if not merge:
                if under is not None:
                    script.remove(below, child)
                script.lines.append(f"mkdir {_img(child)}")
            script.attrs(child, host, st, made=not merge)
            _walk(script, host, child, below, fresh=not merge)
            continue
        if not fresh:
            script.remove(below, child)
        if stat.S_ISREG(mode):
            script.bytes_needed += -(-st.st_size // BLOCK) * BLOCK + BLOCK
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in script.links:
                first, count = script.links[key]
                script.links[key] = (first, count + 1)
                script.lines.append(f"ln {_img(first)} {_img(child)}")
                continue
            if st.st_nlink > 1:
                script.links[key] = (child, 1)
            script.lines.append(f"write {quote(str(host))} {_img(child)}")
            script.attrs(child, host, st)
        elif stat.S_ISLNK(mode):
            target = os.readlink(host)
            script.bytes_needed += BLOCK if len(os.fsencode(target)) >= 60 else 0
            script.lines.append(f"symlink {_img(child)} {quote(target)}")
            script.attrs(child, host, st, mode=False)
        else:
            kind = "p" if stat.S_ISFIFO(mode) else "c" if stat.S_ISCHR(mode) else "b"
            numbers = "" if kind == "p" else \
                f" {os.major(st.st_rdev)} {os.minor(st.st_rdev)}"
            # debugfs's mknod takes a name in its current directory, not a path
            script.lines.append(f"cd {_img(rel)}")
            script.lines.append(f"mknod {quote(entry.name)} {kind}{numbers}")
            script.lines.append('cd "/"')
            script.attrs(child, host, st)
