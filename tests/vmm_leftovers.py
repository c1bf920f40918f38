"""VMM processes outlive the node that started them (by design: a restarted node adopts them),
so a test that stops its node and removes its directory would leave its guests running. After
every test the suite ends each VMM process whose VM directory (`<data_dir>/vms/<id>`, named on
its command line) is gone; a guest whose node's files still exist (a module's node) is left."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

# How each backend's processes name themselves on their command line.
MARKERS = (b"process=formation-", b"bench.support.ch_simulator", b"cloud-hypervisor")
_VM_DIR = re.compile(rb"(/[^\0,=:]*?/vms/[0-9a-f]+)")


def orphaned_vmms() -> set[int]:
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if not any(marker in cmdline for marker in MARKERS):
            continue
        dirs = {m.decode(errors="replace") for m in _VM_DIR.findall(cmdline)}
        if dirs and not any(Path(d).exists() for d in dirs):
            found.add(int(entry.name))
    return found


def end(pids: set[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
