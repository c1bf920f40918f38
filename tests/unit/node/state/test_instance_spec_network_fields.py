"""The spec fields for VM networking and re-placement (egress, ports, replicate): what every
replica accepts, and one-line refusals naming the field for what a hostile writer might send."""

from __future__ import annotations

import pytest

from formation.node.state.instance_spec import spec_problem

BASE = {"image": "ab" * 32, "vcpus": 1, "memory_mb": 512, "disk_gb": 5}


def test_the_fields_are_accepted_when_well_formed() -> None:
    assert spec_problem({**BASE, "egress": True, "ports": ["80/tcp", "53/udp"],
                         "replicate": "never"}) is None


@pytest.mark.parametrize(("extra", "field"), [
    ({"egress": "yes"}, "spec.egress"),
    ({"ports": "80/tcp"}, "spec.ports"),
    ({"ports": ["80"]}, "spec.ports"),
    ({"ports": ["70000/tcp"]}, "spec.ports"),
    ({"ports": ["0/tcp"]}, "spec.ports"),
    ({"ports": [f"{n}/tcp" for n in range(1, 18)]}, "spec.ports"),
    ({"replicate": "always"}, "spec.replicate"),
])
def test_bad_values_are_refused_naming_the_field(extra: dict, field: str) -> None:
    problem = spec_problem({**BASE, **extra})
    assert problem is not None and problem.startswith(field + ":")
