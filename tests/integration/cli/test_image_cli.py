"""`formation image import|ls|rm` against a real `formation node` process: an image imported
from files is listed as held here with each part's SHA-256, a taken name and a missing file are
refused in one line naming the field, and rm frees the blobs."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from tests.integration.cli.test_cli_process import assert_one_line_error
from tests.integration.conftest import formation


def files(base: Path) -> dict[str, Path]:
    src = base / "src"
    src.mkdir()
    out = {"kernel": src / "vmlinuz", "initrd": src / "initrd.img", "disk": src / "root.img"}
    out["kernel"].write_bytes(os.urandom(200_000))
    out["initrd"].write_bytes(os.urandom(50_000))
    out["disk"].write_bytes(os.urandom(3 << 20))
    return out


def test_import_ls_rm(short_tmp: Path, start_node) -> None:
    node = start_node()
    cfg = ("--config", str(node.config))
    founded = formation(*cfg, "network", "create", "lab", "--cidr", "10.77.0.0/16")
    assert founded.returncode == 0, founded.stderr
    src = files(short_tmp)

    done = formation(*cfg, "image", "import", str(src["kernel"]), "--initrd", str(src["initrd"]),
                     "--disk", str(src["disk"]), "--name", "web", "--cmdline",
                     "console=ttyS0 quiet", "--json")
    assert done.returncode == 0, done.stderr
    image = json.loads(done.stdout)
    for part, path in src.items():
        assert image["parts"][part] == {
            "digest": hashlib.sha256(path.read_bytes()).hexdigest(),
            "size": path.stat().st_size}
    assert image["name"] == "web" and image["local"] is True
    assert image["cmdline"] == "console=ttyS0 quiet"
    blobs = node.data_dir / "images" / "blobs"
    assert sorted(p.name for p in blobs.iterdir()) == sorted(
        p["digest"] for p in image["parts"].values())

    listed = formation(*cfg, "image", "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    [entry] = json.loads(listed.stdout)["images"]
    assert entry["digest"] == image["digest"] and entry["local"] is True
    assert set(entry["parts"]) == {"kernel", "initrd", "disk"}
    text = formation(*cfg, "image", "ls")
    assert "web" in text.stdout and image["digest"][:12] in text.stdout

    # a second image in a relative path, human output: a line per part with its size
    tiny = formation(*cfg, "image", "import", os.path.relpath(src["kernel"]), "--name", "tiny")
    assert tiny.returncode == 0, tiny.stderr
    assert tiny.stdout.startswith("kernel") and "195.3 KiB" in tiny.stdout.splitlines()[0]
    assert "sha256:" + image["parts"]["kernel"]["digest"] in tiny.stdout

    taken = formation(*cfg, "image", "import", str(src["kernel"]), "--name", "web")
    line = assert_one_line_error(taken, 1)
    assert "name: an image named web exists" in line and "409" in line

    missing = formation(*cfg, "image", "import", str(src["kernel"]), "--disk",
                        str(short_tmp / "nope.img"), "--name", "x")
    line = assert_one_line_error(missing, 1)
    assert line.startswith("formation: error: --disk:") and "does not exist" in line

    bad_name = formation(*cfg, "image", "import", str(src["kernel"]), "--name", "Bad Name")
    assert "--name: expected lowercase letters" in assert_one_line_error(bad_name, 1)

    removed = formation(*cfg, "image", "rm", "web", "--json")
    assert removed.returncode == 0, removed.stderr
    assert json.loads(removed.stdout) == {"removed": "web"}
    after = json.loads(formation(*cfg, "image", "ls", "--json").stdout)["images"]
    assert [i["name"] for i in after] == ["tiny"]
    # the kernel blob is shared with `tiny`: kept; web's initrd and disk are freed
    assert sorted(p.name for p in blobs.iterdir()) == [image["parts"]["kernel"]["digest"]]

    unknown = formation(*cfg, "image", "rm", "web")
    assert "no image named web" in assert_one_line_error(unknown, 1)
    traversal = formation(*cfg, "image", "rm", "../state.db")
    assert "NAME|DIGEST" in assert_one_line_error(traversal, 1)
