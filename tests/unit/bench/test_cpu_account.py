"""bench/support/cpu_account.py: a role's CPU is its processes' and their children's, a tool
that exits within the round is counted through the reaped children, and the bound follows the
formula (cores / sum of the stages' costs, capped stages). Real processes that spin or sleep."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from bench.support.cpu_account import (
    Account,
    bound,
    descendants,
    of_pids,
    of_processes,
    process_seconds,
    reaped_children,
    scaled_bound,
)
from tests.waiting import until_sync

SPIN = "while True: pass"
IDLE = "import time; time.sleep(60)"
# a parent that sleeps while its child spins: its role must still show the child's CPU
PARENT = ("import subprocess, sys, time; "
          f"subprocess.Popen([sys.executable, '-c', {SPIN!r}]); time.sleep(60)")


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        for pid in descendants([proc.pid]):
            subprocess.run(["kill", "-9", str(pid)], check=False)
        proc.kill()
        proc.wait()


def python(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def test_a_role_counts_its_live_children_and_an_idle_one_nothing(
        procs: list[subprocess.Popen[bytes]]) -> None:
    parent, idle = python(PARENT), python(IDLE)
    procs += [parent, idle]
    account = Account({"parent": of_pids(parent.pid), "idle": of_pids(idle.pid)})
    account.start()
    until_sync(lambda: of_pids(parent.pid)() >= 0.4, timeout_s=30, what="the child's CPU")
    spent = account.stop()
    assert process_seconds(parent.pid) < 0.3  # the parent itself sleeps
    assert spent.roles["parent"] >= 0.3
    assert spent.roles["idle"] < 0.1
    assert 0.0 <= spent.busy <= 1.0
    assert spent.other_s >= 0.0 and spent.softirq_s >= 0.0
    costs = spent.per_unit(2.0, scale=1000)
    assert costs["parent"] >= 150  # >= 0.3 CPU-s over 2 units, in ms
    assert set(costs) == {"parent", "idle"}


def test_a_watched_process_is_named_apart_from_other_and_not_a_cost(
        procs: list[subprocess.Popen[bytes]]) -> None:
    spin = python(SPIN)
    procs.append(spin)
    account = Account({}, watch={"spinner": of_processes(spin.pid)}, top=3)
    account.start()
    until_sync(lambda: process_seconds(spin.pid) >= 0.3, timeout_s=30, what="the spinner's CPU")
    spent = account.stop()
    assert spent.watched["spinner"] >= 0.25
    assert spent.per_unit(1.0) == {}
    assert "spinner_cores" in spent.summary()
    assert any(name == "python3" or name.startswith("python") for name, _ in spent.top)
    assert spent.cores_left() <= 2.0 - spent.watched["spinner"] / spent.wall_s + 1e-6


def test_a_tool_that_exits_within_the_round_is_counted_once_reaped() -> None:
    account = Account({"tool": reaped_children()})
    account.start()
    subprocess.run([sys.executable, "-c",
                    "import time\nend = time.process_time() + 0.3\n"
                    "while time.process_time() < end: pass"], check=True)
    assert account.stop().roles["tool"] >= 0.25


def test_a_process_that_is_gone_costs_nothing() -> None:
    assert process_seconds(2**22 + 1) == 0.0
    assert of_pids(2**22 + 1)() == 0.0


def test_bound_is_cores_over_the_chains_cost_and_respects_capped_stages() -> None:
    # 2 cores, stages of 100 + 300 us per request: 5000 requests/s
    assert bound({"a": 100e-6, "b": 300e-6}, cores=2) == pytest.approx(5000)
    # a one-thread stage of 400 us cannot pass 2500/s even with cores to spare
    assert bound({"wrk": 400e-6, "b": 100e-6}, cores=4,
                 caps={"wrk": 1.0}) == pytest.approx(2500)
    assert bound({}, cores=2) is None
    assert scaled_bound({"a": 10.0, "b": 30.0}, 1000, cores=2) == 50.0  # ms per Mbit
