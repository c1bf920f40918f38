"""The connection caps: derived from the open-file limit, counted per address and in total."""

from __future__ import annotations

import resource
import subprocess
import sys

from formation.node.connection_limits import ConnectionGate, total_cap


def test_the_total_cap_leaves_descriptors_for_the_node() -> None:
    assert total_cap(4096, 1024, 256) == 768  # systemd's default soft limit
    assert total_cap(4096, 256, 256) == 192  # at most a quarter is kept back
    assert total_cap(4096, 524288, 256) == 4096  # the configured number
    assert total_cap(100, 1024, 256) == 100


def test_per_peer_and_total_caps() -> None:
    gate = ConnectionGate(total=3, per_peer=2)
    assert gate.admit("10.0.0.1") and gate.admit("10.0.0.1")
    assert not gate.admit("10.0.0.1")
    assert gate.admit("10.0.0.2")
    assert not gate.admit("10.0.0.3")  # total
    assert gate.refused.labels("per_peer")._value.get() == 1
    assert gate.refused.labels("total")._value.get() == 1
    gate.release("10.0.0.1")
    assert gate.held_by("10.0.0.1") == 1 and gate.open == 2
    assert gate.admit("10.0.0.3")
    for peer in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        gate.release(peer)
    assert gate.open == 0 and gate._by_peer == {}, "no memory kept for closed connections"


RAISE = """
import resource
from formation.node.connection_limits import raise_nofile_limit
resource.setrlimit(resource.RLIMIT_NOFILE, (64, {hard}))
print(raise_nofile_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""


def test_the_soft_open_file_limit_is_raised_to_the_hard_one() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard = min(hard, 4096)
    done = subprocess.run([sys.executable, "-c", RAISE.format(hard=hard)],
                          capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == [str(hard), str(hard)]
