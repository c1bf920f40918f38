"""Why an instance cannot move live (move_handlers.live_problem): each device or state that
cannot follow a live migration gives one line, and a plain running VM gives none."""

from __future__ import annotations

from typing import Any

import pytest

from formation.node.vmm.move_handlers import live_problem

PLACEMENT = "ab" * 32


def inst(state: str = "running", **spec: Any) -> dict[str, Any]:
    return {"key": "cd" * 32, "name": "web", "placement_op": PLACEMENT,
            f"observed@{PLACEMENT}": {"state": state},
            "spec": {"image": "ee" * 32, "vcpus": 1, "memory_mb": 512, "disk_gb": 5, **spec}}


IMAGE = {"parts": {"kernel": {}, "initrd": {}}}


def test_a_plain_running_vm_can_move() -> None:
    assert live_problem(inst(), IMAGE, "qemu", "qemu") is None
    assert live_problem(inst(), IMAGE, "qemu", None) is None  # target never seen: no claim


@pytest.mark.parametrize(("case", "expected"), [
    ((inst(gpus=1), IMAGE, "qemu", "qemu"), "GPUs"),
    ((inst(confidential="sev-snp"), IMAGE, "cloud-hypervisor", "cloud-hypervisor"),
     "sev-snp confidential VM"),
    ((inst(), {"parts": {"kernel": {}, "disk": {}}}, "qemu", "qemu"), "has a disk"),
    ((inst("stopped"), IMAGE, "qemu", "qemu"), "not running (stopped)"),
    ((inst("booting"), IMAGE, "qemu", "qemu"), "not running (booting)"),
    (({**inst(), "placement_op": "ff" * 32}, IMAGE, "qemu", "qemu"), "not running (not placed)"),
    ((inst(), IMAGE, "qemu", "cloud-hypervisor"), "runs on qemu and the target runs "
     "cloud-hypervisor"),
])
def test_what_cannot_move_live_says_why_in_one_line(case, expected) -> None:
    problem = live_problem(*case)
    assert problem is not None and expected in problem and "\n" not in problem
