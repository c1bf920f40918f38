"""bench/support/fleet_cpu.py: a path's CPU per MB comes from the right processes. Real
processes: one that spins (its CPU time must grow, an idle one's must not) and stand-ins named
like the lab's wireguard-go (in a network namespace of its own) and a guest's QEMU."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from bench.support.fleet_cpu import Meter, cpu_bound_ratio, cpu_seconds, find
from tests.waiting import until_sync

SPIN = "import time\nwhile True: pass"
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


def test_cpu_seconds_grow_with_work_only(procs: list[subprocess.Popen]) -> None:
    spin = named("spinner", SPIN)
    idle = named("sleeper", IDLE)
    procs += [spin, idle]
    meter = Meter({"spin": spin.pid, "idle": idle.pid})
    meter.start()
    until_sync(lambda: cpu_seconds(spin.pid) >= 0.3, timeout_s=30, what="the spinner's CPU")
    cost = meter.per_mb(2.0, ["spin", "idle", "absent"])
    assert cost["spin"] >= 150  # >= 0.3 s over 2 MB
    assert cost["idle"] < 50
    assert "absent" not in cost
    assert cpu_seconds(2**22 + 1) == 0.0  # no such process: nothing, not an error


def test_cpu_bound_ratio() -> None:
    assert cpu_bound_ratio({"wg": 30.0, "sockets": 10.0}, {"wg": 60.0, "qemu": 140.0}) == 0.2
    assert cpu_bound_ratio({"wg": 30.0}, {}) is None


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
