"""Prints one JSON list describing the tree under argv[1]: what a disk and an overlay view are
compared by (path, type, mode, owner, size, content digest, symlink target, mtime clamped to
SOURCE_DATE_EPOCH as the builder does). Run inside a mount namespace that mounted the tree."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys

EPOCH = 1700000000


def describe(root: str) -> list[list[object]]:
    rows: list[list[object]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if rel == "lost+found":  # mkfs.ext4 makes it; no layer has it
                continue
            st = os.lstat(path)
            extra: object = None
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    extra = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                extra = [os.major(st.st_rdev), os.minor(st.st_rdev)]
            size = st.st_size if stat.S_ISREG(st.st_mode) else 0
            rows.append([rel, oct(st.st_mode), st.st_uid, st.st_gid, size, extra,
                         min(int(st.st_mtime), EPOCH)])
    return rows


if __name__ == "__main__":
    json.dump(describe(sys.argv[1]), sys.stdout)
