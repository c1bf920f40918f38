"""The disk made one layer at a time (formation/pack/build/diskchain.py) holds exactly what
the overlay of the image's layers shows: read back by the kernel (the disk loop-mounted
read-only, the layers overlay-mounted, both in private mount namespaces) and compared entry by
entry: modes (setuid too), owners, contents, symlinks, hard links, fifos, a base directory
deleted (a whiteout), a directory emptied and made again (opaque), a directory replaced by a
file and a file by a directory, a name with a quote and a space. The disk passes e2fsck, and a
disk made again from a cached parent disk has the same bytes as one made from the base up."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pack_build_support import (
    CACHE,
    DISKS,
    SESSION,
    Recorder,
    context,
    layers_now,
    remove_new_layers,
    settings,
    skip_unless_buildable,
)

from formation.pack.build import BuildError, BuiltImage, build_image
from formation.pack.build.engine import layer_paths
from formation.pack.build.sandbox import OVERLAY_OPTS
from formation.pack.spec import FormfileSpec, Run

pytestmark = [pytest.mark.root, pytest.mark.timeout(900)]
WALK = Path(__file__).with_name("tree_walk.py")

MAKE = ("mkdir -p /srv/tree/sub /srv/gone && echo a > /srv/tree/a && ln -s ../a /srv/tree/sub/rel"
        " && ln -s /etc/hostname /srv/abs && echo h > /srv/tree/hard1"
        " && ln /srv/tree/hard1 /srv/tree/hard2 && chown 1234:4321 /srv/tree/a"
        " && chmod 4750 /srv/tree/a && mkfifo /srv/fifo && echo q > '/srv/we\"ird name'"
        " && echo x > /srv/gone/f && echo k > /srv/k1 && ln /srv/k1 /srv/k2"
        " && ln -s " + "t" * 100 + " /srv/long-link")
CHANGE = ("rm -rf /usr/share/doc /srv/gone && rm /etc/issue.net /srv/tree/sub/rel"
          " && rm -rf /etc/apt/sources.list.d && mkdir /etc/apt/sources.list.d"
          " && echo keep > /etc/apt/sources.list.d/new && rm -rf /etc/skel"
          " && echo now-a-file > /etc/skel && rm /etc/motd && mkdir /etc/motd"
          " && echo b > /srv/tree/sub/rel && echo h2 >> /srv/tree/hard2")
META = "chmod 700 /srv/tree && touch -d @1500000000 /srv/tree/a && chown 7:8 /srv"


def spec(last: str = META) -> FormfileSpec:
    return FormfileSpec(name="chain", steps=(
        Run(2, f"echo {SESSION} > /etc/formation-test-session"),
        Run(3, MAKE), Run(4, CHANGE), Run(5, last)))


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def _walk_mounted(mount: str, target: Path) -> list[list[object]]:
    script = f"set -e\n{mount}\nexec {sys.executable} {WALK} {target}\n"
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", "--",
                          "sh", "-c", script], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BuiltImage, Path]]:
    skip_unless_buildable()
    if shutil.which("losetup") is None or not Path("/dev/loop-control").exists():
        pytest.skip("comparing the disk needs loop devices")
    before = layers_now() if (CACHE / "l").is_dir() else set()
    root = tmp_path_factory.mktemp("chain")
    try:
        ctx = context(root / "ctx")
        image = asyncio.run(build_image(spec(), ctx, settings(), root / "out", Recorder()))
        yield image, ctx
    finally:
        remove_new_layers(before)


def test_the_disk_shows_what_the_overlay_of_the_layers_shows(built: tuple[BuiltImage, Path],
                                                             tmp_path: Path) -> None:
    image, ctx = built
    layers = asyncio.run(layer_paths(spec(), ctx, settings()))
    lower = ":".join(str(p) for p in reversed(layers))
    (tmp_path / "view").mkdir()
    (tmp_path / "disk").mkdir()
    view = _walk_mounted(f"mount -t overlay overlay -o ro,lowerdir={lower},{OVERLAY_OPTS} "
                         f"{tmp_path / 'view'}", tmp_path / "view")
    disk = _walk_mounted(f"mount -o ro,loop,noload {image.disk} {tmp_path / 'disk'}",
                         tmp_path / "disk")
    assert len(disk) > 10000
    rows = {r[0]: r for r in disk}
    assert rows["srv/tree/a"][1:4] == [oct(0o104750), 1234, 4321]
    assert rows["srv/tree/a"][6] == 1500000000
    assert rows["srv/tree"][1] == oct(0o40700) and rows["srv"][2:4] == [7, 8]
    assert rows["srv/tree/sub/rel"][5] == hashlib.sha256(b"b\n").hexdigest()
    assert rows["srv/long-link"][5] == "t" * 100
    assert rows["srv/fifo"][1] == oct(0o10644)
    assert rows["etc/skel"][1].startswith("0o100") and rows["etc/motd"][1].startswith("0o40")
    assert rows["srv/we\"ird name"][4] == 2
    gone = [r[0] for r in disk if r[0] in ("usr/share/doc", "srv/gone", "etc/issue.net")
            or r[0].startswith(("usr/share/doc/", "srv/gone/"))]
    assert gone == []
    assert [r[0] for r in disk if r[0].startswith("etc/apt/sources.list.d")] == [
        "etc/apt/sources.list.d", "etc/apt/sources.list.d/new"]
    missing = [r for r in view if r not in disk]
    extra = [r for r in disk if r not in view]
    assert (missing[:5], extra[:5]) == ([], []), (missing[:5], extra[:5])
    assert len(view) == len(disk)
    # hard links made in one layer stay one file; changing one name from a later layer
    # copies it up (overlayfs without index): two files, as the view shows
    assert rows["srv/tree/hard1"][5] != rows["srv/tree/hard2"][5]
    stat = subprocess.run(["debugfs", "-R", "stat /srv/k1", str(image.disk)],
                          capture_output=True, text=True, check=True).stdout
    assert "Links: 2" in stat
    fsck = subprocess.run(["e2fsck", "-fn", str(image.disk)], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_a_disk_from_the_cached_parent_has_the_bytes_of_one_from_the_base_up(
        built: tuple[BuiltImage, Path], tmp_path: Path) -> None:
    image, ctx = built
    # Every layer is cached now; the disk below the last step too. Without it (evicted), the
    # chain starts again from the base's disk: the same bytes either way.
    rec = Recorder()
    again = asyncio.run(build_image(spec(), ctx, settings(), tmp_path / "a", rec))
    assert rec.built() == ["disk image"]
    layers = asyncio.run(layer_paths(spec(), ctx, settings()))
    parent = DISKS / f"{layers[-3].name}.img"
    assert parent.exists()
    parent.unlink()
    rec = Recorder()
    from_base = asyncio.run(build_image(spec(), ctx, settings(), tmp_path / "b", rec))
    assert _sha(again.disk) == _sha(image.disk) == _sha(from_base.disk)


def test_a_file_name_with_a_line_break_fails_the_build_naming_it(
        built: tuple[BuiltImage, Path], tmp_path: Path) -> None:
    _, ctx = built
    with pytest.raises(BuildError) as caught:
        asyncio.run(build_image(spec("touch \"/srv/two$(printf '\\nlines')\""), ctx,
                                settings(), tmp_path / "out", Recorder()))
    assert str(caught.value) == ("disk image: a file name with a line break is not "
                                 "supported: 'srv/two\\nlines'")
    assert not (tmp_path / "out").exists()
