"""The API answers before the vmm part starts (it starts once the node is ready): what needs
the node's key then is a 503 to retry, never a 500 (`lab start` followed at once by `vm ls`
got "internal error")."""

from __future__ import annotations

from typing import Any, cast

import pytest

from formation.api.errors import Unavailable
from formation.node.vmm.component import VmmComponent


def test_live_members_before_start_is_unavailable_not_an_internal_error() -> None:
    part = VmmComponent(cast(Any, None), cast(Any, None))
    with pytest.raises(Unavailable, match="still starting"):
        part.live_members()
    assert Unavailable.status == 503
