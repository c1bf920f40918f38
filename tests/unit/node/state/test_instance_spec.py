"""The spec and observed checks on their own: each bad field is named in one line."""

from __future__ import annotations

import pytest

from formation.api.vm_models import DISK_GB, MEMORY_MB, VCPUS
from formation.node.state.instance_spec import observed_problem, spec_problem

GOOD = {"image": "ab" * 32, "vcpus": 2, "memory_mb": 1024, "disk_gb": 10}


def test_a_full_spec_passes() -> None:
    assert spec_problem(GOOD) is None
    assert spec_problem({**GOOD, "gpus": 1, "confidential": "sev-snp", "node": "cd" * 32,
                         "cmdline": "console=ttyS0"}) is None


@pytest.mark.parametrize(("field", "value"), [
    ("vcpus", VCPUS[0] - 1), ("vcpus", VCPUS[1] + 1), ("vcpus", True), ("vcpus", "2"),
    ("memory_mb", MEMORY_MB[0] - 1), ("memory_mb", MEMORY_MB[1] + 1),
    ("disk_gb", DISK_GB[0] - 1), ("disk_gb", DISK_GB[1] + 1),
    ("image", "nothex"), ("image", "AB" * 32), ("gpus", 17), ("gpus", -1),
    ("confidential", "sgx"), ("node", "h2"), ("cmdline", "x" * 1025), ("cmdline", 5),
])
def test_out_of_range_names_the_field(field: str, value: object) -> None:
    problem = spec_problem({**GOOD, field: value})
    assert problem is not None and problem.startswith(f"spec.{field}: expected")
    assert "\n" not in problem


@pytest.mark.parametrize("field", ["image", "vcpus", "memory_mb", "disk_gb"])
def test_required_fields(field: str) -> None:
    spec = dict(GOOD)
    del spec[field]
    assert str(spec_problem(spec)).startswith(f"spec.{field}: expected")


def test_unknown_fields_and_non_maps_refused() -> None:
    assert str(spec_problem({**GOOD, "cpus": 1})).startswith("spec.cpus: not a field")
    assert spec_problem([GOOD]) == "spec: expected a map"


def test_observed() -> None:
    ok = {"state": "running", "reason": "", "since_ms": 1, "boot": 0, "vcpus": 2,
          "memory_mb": 1024, "backend": "qemu"}
    assert observed_problem(ok, 100) is None
    assert observed_problem({"state": "failed", "serial_tail": ["x" * 200] * 20}, 100) is None
    assert str(observed_problem({"state": "up"}, 10)).startswith("observed.state: expected")
    assert str(observed_problem({**ok, "boot": -1}, 10)).startswith("observed.boot")
    assert str(observed_problem({**ok, "x": 1}, 10)).startswith("observed.x: not a field")
    assert str(observed_problem(ok, 4097)).startswith("observed: expected at most 4096 bytes")
    assert str(observed_problem({"state": "running", "serial_tail": []}, 10)).endswith(
        "only with state failed")
    for tail in (["x"] * 21, ["x" * 201], [1]):
        assert str(observed_problem({"state": "failed", "serial_tail": tail}, 10)).startswith(
            "observed.serial_tail: expected at most 20 lines")
