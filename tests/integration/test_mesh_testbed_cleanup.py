"""The simulated hosts leave nothing behind, also when the test inside them fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mesh_support import identities, requires_mesh_tools

from formation.node.net.testbed import Testbed
from formation.node.net.wggo import WireGuardGoBackend

pytestmark = [requires_mesh_tools, pytest.mark.root]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status").read_text()
    return "State:\tZ" not in status


async def test_failure_inside_the_testbed_still_cleans_up() -> None:
    bed = Testbed(["a"])
    pids: list[int] = []
    backend: WireGuardGoBackend | None = None
    try:
        with pytest.raises(RuntimeError, match="boom"):
            async with bed:
                backend = WireGuardGoBackend("formnet0", bed.hosts["a"].net)
                await backend.create(identities(["a"])["a"].wireguard_private_key, 0)
                assert backend.pid is not None
                pids = [backend.pid, bed.hosts["a"].anchor.pid]
                raise RuntimeError("boom")  # before the backend is deleted
        assert pids and not any(alive(pid) for pid in pids)
        assert not Path(f"/run/netns/{bed.prefix}a").exists()
        assert not Path(f"/run/netns/{bed.switch}").exists()
    finally:
        if backend is not None:  # stop its supervisor from restarting into a gone namespace
            await backend.delete()
