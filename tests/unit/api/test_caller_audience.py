"""The one audience rule (`caller.allows`), for every audience and kind of caller, including
PLACED, which no route uses yet: a member may pass the server, and the handler then asks
`placed_here` whether the work is placed on the calling node."""

from __future__ import annotations

import pytest

from formation.api.caller import Audience, Caller, allows
from formation.api.errors import Forbidden

KEY_A, KEY_B = "aa" * 32, "bb" * 32
LOCAL = Caller("unix", pid=1, uid=0)
UNSIGNED = Caller("tcp", remote="192.0.2.1")
NEW_KEY = Caller("tcp", key=KEY_A)
MEMBER = Caller("tcp", key=KEY_A, member=True)
ADMIN = Caller("tcp", key=KEY_B, member=True, admin=True)

TABLE = {  # audience -> (local, unsigned, new key, member, admin)
    Audience.LOCAL: (True, False, False, False, False),
    Audience.ADMIN: (True, False, False, False, True),
    Audience.MEMBER: (True, False, False, True, True),
    Audience.PLACED: (True, False, False, True, True),
    Audience.ANY_KEY: (True, False, True, True, True),
    Audience.TENANT: (True, False, False, False, False),
    Audience.PUBLIC: (True, True, True, True, True),
}


@pytest.mark.parametrize("audience", list(Audience))
def test_allows_follows_the_table(audience: Audience) -> None:
    callers = (LOCAL, UNSIGNED, NEW_KEY, MEMBER, ADMIN)
    assert tuple(allows(audience, c) for c in callers) == TABLE[audience]


def test_tenant_routes_take_keys_of_accounts_only() -> None:
    assert allows(Audience.TENANT, Caller("tcp", key=KEY_A, account=True))
    assert not allows(Audience.TENANT, Caller("tcp", key=KEY_A, member=True, admin=True))
    assert not allows(Audience.MEMBER, Caller("tcp", key=KEY_A, account=True))


def test_placed_here_is_the_local_operator_or_the_node_itself() -> None:
    assert LOCAL.placed_here(KEY_A)
    assert MEMBER.placed_here(KEY_A)
    assert not MEMBER.placed_here(KEY_B)  # a member, but the work is on another node
    assert not NEW_KEY.placed_here(KEY_A)  # the right key, but not a member (removed)


def test_caller_names_itself_for_the_log() -> None:
    assert str(LOCAL) == "unix:pid=1,uid=0"
    assert str(MEMBER) == f"key:{KEY_A}"
    assert str(NEW_KEY) == f"newkey:{KEY_A}"
    assert str(UNSIGNED) == "tcp:192.0.2.1 unsigned"


def test_a_handler_needing_a_key_refuses_the_local_caller() -> None:
    assert MEMBER.require_key() == KEY_A
    with pytest.raises(Forbidden, match="signs its request"):
        LOCAL.require_key()
