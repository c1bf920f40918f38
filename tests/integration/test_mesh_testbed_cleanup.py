"""The simulated hosts leave nothing behind, also when the test inside them fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mesh_support import identities, requires_mesh_tools

from bench.support.testbed import Testbed
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


async def test_call_in_netns_always_returns_the_thread_to_its_namespace() -> None:
    """The thread pool is shared: a worker left in a host's namespace would poison later work."""
    import threading

    from formation.node.net.host import call_in_netns

    def here() -> int:
        return os.stat("/proc/thread-self/ns/net").st_ino

    def fail() -> None:
        raise ValueError("inside")

    async with Testbed(["a"]) as bed:
        ns = bed.hosts["a"].netns
        result: dict[str, int] = {}

        def work() -> None:
            result["before"] = here()
            result["inside"] = call_in_netns(ns, here)
            with pytest.raises(ValueError, match="inside"):
                call_in_netns(ns, fail)
            result["after"] = here()

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        assert result["inside"] == os.stat(f"/run/netns/{ns}").st_ino
        assert result["before"] == result["after"] != result["inside"]
