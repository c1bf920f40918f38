"""bench/tenants.py's voiding round (support/tenant_grants.void_round) at a tiny size: the
revocation it writes really missed the use (the use is void, its effects gone), and the other
revocation saw everything. Real replica on real SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench"


def test_the_voiding_round_voids_a_use_and_reports_its_cost(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))  # bench/tenants.py imports `support` as a script
    import tenants

    out = tenants.run(accounts=20, checks=40, instances=20, grants=40)
    voiding = out["voiding"]
    assert isinstance(voiding, dict)
    assert voiding["revoke_void_ms"] > 0 and voiding["revoke_plain_ms"] > 0
    assert voiding["ops_in_log"] > 40 + 20 + 20
    assert out["authz_ratio"] > 0
