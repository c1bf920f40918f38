"""The node waits for its data directory's own file system (the appliance's data partition) and
wakes when the kernel's mount table changes; the mount is a real tmpfs in a private mount
namespace (unshare), so the host's mounts are untouched."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from formation.errors import FormationError
from formation.node.data_mount import wait_for_mount


def test_a_mount_point_needs_no_wait() -> None:
    assert wait_for_mount(Path("/")) == 0.0


def test_no_mount_is_a_clear_error(short_tmp: Path) -> None:
    with pytest.raises(FormationError, match=f"{short_tmp} is not a mount point after 0 s"):
        wait_for_mount(short_tmp, limit_s=0.3)


MOUNT_LATER = """
import subprocess, sys, threading, time
from pathlib import Path
from formation.node.data_mount import wait_for_mount
target = sys.argv[1]
def mount():
    time.sleep(0.5)
    subprocess.run(["mount", "-t", "tmpfs", "fm-test", target], check=True)
threading.Thread(target=mount).start()
print(wait_for_mount(Path(target), limit_s=20))
"""


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux's unshare")
@pytest.mark.root
def test_it_wakes_when_the_file_system_is_mounted(short_tmp: Path) -> None:
    target = short_tmp / "data"
    target.mkdir()
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable,
                           "-c", MOUNT_LATER, str(target)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert 0.4 < float(done.stdout) < 15
    assert not target.is_mount()  # the mount stayed in its namespace
