"""The fleet lab for issue 16's tests: one 3-host lab per test module (root, real node
processes, wireguard-go, QEMU/TCG guests), with the mesh and DNS on, network "lab" founded on h1
and joined by h2 and h3, every pair of hosts meshed, and the test guest imported on h1. The
harness itself (creating a VM pinned to a host, waiting for Running, typing on its console and
reading its serial log) is bench/support/fleet_lab.py, which bench/fleet.py drives the same way.

The lab is made outside the tests' event loops (asyncio.run in a module fixture): its helpers
open a client per call, so nothing of it is bound to a loop."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator

import pytest
from guest_kit_skip import guest_kit_or_skip
from lab_running import assert_nothing_left

from bench.support import fleet_lab
from bench.support.fleet_lab import Fleet

TOOLS = ("qemu-system-x86_64", "wireguard-go", "nsenter", "tcpdump", "ip")


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    if os.geteuid() != 0:
        pytest.skip("needs root (network and mount namespaces)")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (scripts/system-packages.sh)")
    kit = guest_kit_or_skip()
    made = asyncio.run(fleet_lab.up(kit))
    try:
        yield made
    finally:
        made.lab.down()
        assert_nothing_left(made.lab.lab_id)
