"""Waiting for the data directory's own file system. The appliance starts the node before its
data partition is mounted: the partition is grown and found by udev at first boot, seconds of an
emulated boot, and the node's Python imports (most of its start) need none of it. So the node
imports first, then waits here until the data directory is a mount point, before it reads or
writes anything in it: a write before the mount would land, unseen, on the root file system."""

from __future__ import annotations

import logging
import os
import select
import time
from pathlib import Path

from formation.errors import FormationError

log = logging.getLogger(__name__)

WAIT_LIMIT_S = 170.0  # under the unit's TimeoutStartSec=180s: the node's own message comes first
MOUNTINFO = "/proc/self/mountinfo"


def wait_for_mount(path: Path, limit_s: float = WAIT_LIMIT_S, mountinfo: str = MOUNTINFO) -> float:
    """Returns the seconds waited. The kernel wakes a poll on /proc/self/mountinfo whenever the
    mount table changes, so this sleeps until then rather than polling the path."""
    if os.path.ismount(path):
        return 0.0
    started = time.monotonic()
    log.info("waiting for the data directory's file system", extra={"fields": {
        "path": str(path)}})
    with open(mountinfo, "rb") as table:
        poller = select.poll()
        poller.register(table, select.POLLPRI | select.POLLERR)
        while not os.path.ismount(path):
            left = started + limit_s - time.monotonic()
            if left <= 0:
                raise FormationError(
                    f"{path} is not a mount point after {limit_s:.0f} s: its file system (the "
                    "data partition) was not mounted (--wait-for-data-mount)")
            table.seek(0)
            table.read()  # re-arms the wake-up for the next change
            poller.poll(min(left, 1.0) * 1000)
    waited = time.monotonic() - started
    log.info("data directory mounted", extra={"fields": {
        "path": str(path), "waited_s": round(waited, 1)}})
    return waited
