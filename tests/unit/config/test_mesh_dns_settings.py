"""The mesh: and dns: settings: defaults, and errors that name the key."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from formation.config.settings import NodeSettings


def test_defaults() -> None:
    s = NodeSettings()
    assert (s.mesh.enabled, s.mesh.interface, s.mesh.listen_port) == (False, "formnet0", 51820)
    assert s.mesh.backend == "auto" and s.mesh.network == "10.88.0.0/16"
    assert (s.dns.enabled, s.dns.port, s.dns.zone, s.dns.upstreams) == (False, 53, "fog", [])
    assert NodeSettings.model_validate({"dns": {"upstreams": ["[2620:fe::fe]:53"]}})


@pytest.mark.parametrize(("data", "where"), [
    ({"mesh": {"interface": "much-too-long-name0"}}, "mesh.interface"),
    ({"mesh": {"address": "10.88.0.1"}}, "mesh.address"),
    ({"mesh": {"network": "10.88.0.0/33"}}, "mesh.network"),
    ({"mesh": {"backend": "userspace"}}, "mesh.backend"),
    ({"dns": {"listen": ["localhost"]}}, "dns.listen.0"),
    ({"dns": {"upstreams": ["9.9.9.9"]}}, "dns.upstreams.0"),
    ({"dns": {"upstreams": ["dns.example:53"]}}, "dns.upstreams.0"),
    ({"dns": {"port": 70000}}, "dns.port"),
    ({"mesh": {"peers": []}}, "mesh.peers"),
])
def test_bad_values_name_the_key(data: dict, where: str) -> None:
    with pytest.raises(ValidationError) as info:
        NodeSettings.model_validate(data)
    locations = {".".join(str(p) for p in e["loc"]) for e in info.value.errors()}
    assert where in locations
