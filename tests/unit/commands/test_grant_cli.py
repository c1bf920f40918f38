"""The grant commands' own parsing: --until (a time or a span), --allow (short names), and
which grant a grantee's `tenant ... --as ACCOUNT` names (a live one of that account allowing
the action on that instance, the longest-lived first; else one line why not)."""

from __future__ import annotations

import pytest

from formation.commands.grant import parse_actions, pick_grant, until_ms
from formation.commands.tenant import TenantError

NOW = 1_796_000_000_000  # 2026-11-30


def test_until_takes_a_utc_time_or_a_span() -> None:
    assert until_ms("2026-12-10T00:00Z", NOW) == 1_796_860_800_000
    assert until_ms("2026-12-10T00:00", NOW) == 1_796_860_800_000  # no zone: UTC
    assert until_ms("2026-12-10T01:00+01:00", NOW) == 1_796_860_800_000
    assert until_ms("12h", NOW) == NOW + 12 * 3_600_000
    assert until_ms("+7d", NOW) == NOW + 7 * 86_400_000
    for bad in ("friday", "2020-01-01T00:00Z", "3y"):
        with pytest.raises(TenantError) as caught:
            until_ms(bad, NOW)
        assert str(caught.value).startswith(f"--until {bad}:")


def test_allow_takes_short_or_full_action_names() -> None:
    assert parse_actions("start, instance.stop,start") == ["instance.start", "instance.stop"]
    assert parse_actions("image.add,create") == ["image.add", "instance.create"]
    with pytest.raises(TenantError, match=r"--allow image\.build: expected actions from create"):
        parse_actions("stop,image.build")


def test_the_grant_a_use_names() -> None:
    grants = [
        {"key": "a" * 64, "account": "alice", "actions": ["instance.stop"], "on": "web-1",
         "until_ms": 5, "live": True},
        {"key": "b" * 64, "account": "alice", "actions": ["instance.update"], "prefix": "web-",
         "until_ms": 9, "live": True},
        {"key": "c" * 64, "account": "alice", "actions": ["instance.delete"], "prefix": "web-",
         "until_ms": 9, "live": False},
        {"key": "d" * 64, "account": "bob", "actions": ["instance.delete"], "prefix": "",
         "until_ms": 9, "live": True},
    ]
    assert pick_grant(grants, "alice", "instance.stop", "web-1") == "b" * 64  # lives longer
    assert pick_grant(grants, "alice", "instance.start", "web-2") == "b" * 64
    for account, action, name in (("alice", "instance.delete", "web-1"),
                                  ("alice", "instance.stop", "db"),
                                  ("carol", "instance.stop", "web-1")):
        with pytest.raises(TenantError, match=f"--as {account}: no live grant"):
            pick_grant(grants, account, action, name)
