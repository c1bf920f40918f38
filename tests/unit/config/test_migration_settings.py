"""The vmm.migration_* settings: a port range that can hold a listener, an IPv4 address."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from formation.config.settings import VmmSettings


def test_defaults_and_a_loopback_override() -> None:
    s = VmmSettings()
    assert (s.migration_ports, s.migration_address, s.migration_timeout_s) == (
        "49152-49215", None, 600.0)
    assert str(VmmSettings(migration_address="127.0.0.1").migration_address) == "127.0.0.1"


@pytest.mark.parametrize(("field", "value"), [
    ("migration_ports", "49215-49152"), ("migration_ports", "80-90"),
    ("migration_ports", "49152-70000"), ("migration_ports", "49152"),
    ("migration_ports", "a-b"), ("migration_address", "::1"),
    ("migration_address", "host.example"), ("migration_timeout_s", 0),
])
def test_bad_values_are_refused_naming_the_field(field, value) -> None:
    with pytest.raises(ValidationError) as exc:
        VmmSettings(**{field: value})
    assert field in str(exc.value)
