"""The build API's request: exactly one context (a path on the node or an uploaded tar), a
name that can be an image's, a bounded upload."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from formation.api import pack_models as pm


def test_exactly_one_context() -> None:
    assert pm.PackBuildStart(context="/srv/web").reuse is True
    assert pm.PackBuildStart(context_tar="AAAA").context is None
    for fields in ({}, {"context": "/srv/web", "context_tar": "AAAA"}):
        with pytest.raises(ValidationError, match="exactly one of context"):
            pm.PackBuildStart(**fields)


@pytest.mark.parametrize("fields", [
    {"context": "/srv/web", "name": "Web"},
    {"context": "/srv/web", "name": "-web"},
    {"context": ""},
    {"context_tar": "A" * (pm.MAX_CONTEXT_TAR_B64 + 1)},
    {"context": "/srv/web", "extra": 1},
])
def test_refused_requests(fields) -> None:
    with pytest.raises(ValidationError):
        pm.PackBuildStart(**fields)


def test_a_step_report_is_bounded() -> None:
    with pytest.raises(ValidationError):
        pm.PackStep(step=1, total=2, label="x", fraction=1.5)
    assert pm.PackStep(step=0, total=0, label="base", fraction=0).cached is False
