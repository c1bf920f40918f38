"""bench/support/fleet_cpu.py: the fleet bench charges CPU to the right processes. Real
stand-ins named like the lab's wireguard-go (in a network namespace of its own) and a guest's
QEMU; the accounting itself is tested in test_cpu_account.py."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from bench.support.fleet_cpu import find
from tests.waiting import until_sync

IDLE = "import time; time.sleep(60)"


def named(argv0: str, code: str, *args: str, netns: str | None = None) -> subprocess.Popen:
    """A Python process whose /proc cmdline starts with `argv0` (exec -a) and holds `args`."""
    inner = ["bash", "-c", f'exec -a {argv0} "$0" "$@"', sys.executable, "-c", code, *args]
    argv = ["ip", "netns", "exec", netns, *inner] if netns else inner
    return subprocess.Popen(argv)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        proc.kill()
        proc.wait()


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a network namespace)")
def test_find_takes_wireguard_by_namespace_and_qemu_by_instance(
        procs: list[subprocess.Popen]) -> None:
    ns = f"fmcpu-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        iid = "ab" * 32
        wg_in = named("wireguard-go", IDLE, "-f", "formnet0", netns=ns)
        wg_out = named("wireguard-go", IDLE, "-f", "formnet0")  # the machine's own: not ours
        qemu = named("qemu-system-x86_64", IDLE, "-name", f"web,process=formation-{iid[:12]}")
        other = named("qemu-system-x86_64", IDLE, "-name", "x,process=formation-cdcdcdcdcdcd")
        procs += [wg_in, wg_out, qemu, other]

        def found() -> dict[str, int] | None:
            got = find({"h1": ns}, {"web": iid})
            return got if len(got) == 2 else None

        got = until_sync(found, timeout_s=30, what="both stand-ins found")
        assert got == {"wireguard-go@h1": wg_in.pid, "qemu@web": qemu.pid}
    finally:
        for proc in procs:
            proc.kill()
        subprocess.run(["ip", "netns", "del", ns], check=False)
