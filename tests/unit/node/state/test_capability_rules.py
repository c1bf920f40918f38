"""node.capabilities: an admin asks a member node to be an edge or a builder. Only a network admin
may write it (a member node, an account's key, a removed node: refused with one line, nothing
written); it changes nobody's roles. Real replicas on real SQLite, real Ed25519 keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from statekit import (
    craft,
    found,
    found_with_member,
    random_key,
    replica,
    sync,
    views,
    write,
)

from formation.identity import NodeIdentity

ADMIN, NODE, OTHER, ALICE = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (1, 2, 3, 10))


@pytest.fixture
def base(short_tmp: Path) -> Path:
    return short_tmp


def caps(r, key: str) -> list[str] | None:
    return next(n for n in r.view("nodes") if n["key"] == key).get("capabilities")


def refused(r, who: NodeIdentity, payload: dict) -> tuple[str, str]:
    before = views(r)
    verdict = r.ingest([craft(who, r, "node.capabilities", payload)]).verdicts[0]
    assert verdict.status == "refused", verdict
    assert views(r) == before  # nothing written
    assert "\n" not in verdict.message
    return verdict.reason, verdict.message


def test_an_admin_sets_capabilities_and_the_nodes_view_shows_them(base) -> None:
    r = found(base, ADMIN, [NODE])
    roles_before = {n["key"]: n["roles"] for n in r.view("nodes")}
    assert caps(r, NODE.public_key_hex) is None
    write(r, ADMIN, "node.capabilities", {"node": NODE.public_key_hex,
                                          "capabilities": ["edge", "builder"]})
    assert caps(r, NODE.public_key_hex) == ["builder", "edge"]
    write(r, ADMIN, "node.capabilities", {"node": NODE.public_key_hex, "capabilities": []})
    assert caps(r, NODE.public_key_hex) == []
    assert {n["key"]: n["roles"] for n in r.view("nodes")} == roles_before  # not a role


def test_a_member_node_may_not_set_its_own_or_anothers_capabilities(base) -> None:
    r = found(base, ADMIN, [NODE, OTHER])
    for target in (NODE, OTHER, ADMIN):
        reason, message = refused(r, NODE, {"node": target.public_key_hex,
                                            "capabilities": ["edge"]})
        assert (reason, message) == ("unauthorized",
                                     "node.capabilities: only a network admin may do this")


def test_an_accounts_key_may_not_set_capabilities(base) -> None:
    r = found(base, ADMIN, [NODE])
    write(r, ADMIN, "account.set", {"name": "alice", "keys": [ALICE.public_key_hex],
                                    "roles": ["admin"]})  # even an admin account: not a node
    reason, message = refused(r, ALICE, {"node": NODE.public_key_hex, "capabilities": ["edge"]})
    assert reason == "unauthorized"
    assert "an account's key may sign only" in message


def test_a_removed_admin_is_refused(base) -> None:
    r = found(base, ADMIN, [NODE])
    write(r, ADMIN, "node.roles", {"node": NODE.public_key_hex, "roles": ["admin"]})
    write(r, ADMIN, "node.remove", {"node": NODE.public_key_hex})
    reason, _ = refused(r, NODE, {"node": ADMIN.public_key_hex, "capabilities": ["edge"]})
    assert reason == "unauthorized"


@pytest.mark.parametrize(("payload", "message"), [
    ({"node": "zz", "capabilities": ["edge"]},
     "payload.node: expected a node's Ed25519 key, 64 hex"),
    ({"node": NODE.public_key_hex, "capabilities": ["gpu"]},
     "payload.capabilities: expected a list of distinct capabilities from builder, edge"),
    ({"node": NODE.public_key_hex, "capabilities": ["edge", "edge"]},
     "payload.capabilities: expected a list of distinct capabilities from builder, edge"),
    ({"node": NODE.public_key_hex, "capabilities": "edge"},
     "payload.capabilities: expected a list of distinct capabilities from builder, edge"),
    ({"node": NODE.public_key_hex, "capabilities": [], "roles": ["admin"]},
     "payload.roles: not a field of this kind"),
])
def test_malformed_payloads_are_refused_with_one_line(base, payload, message) -> None:
    r = found(base, ADMIN, [NODE])
    assert refused(r, ADMIN, payload) == ("invalid", message)


def test_a_node_that_is_not_a_member_cannot_be_given_capabilities(base) -> None:
    r = found(base, ADMIN, [NODE])
    key = random_key()
    assert refused(r, ADMIN, {"node": key, "capabilities": ["edge"]}) == (
        "invalid", f"payload.node: {key[:16]} is not a member of the network")


def test_replicas_converge_on_the_latest_write(base) -> None:
    a = found(base, ADMIN, [NODE], "a")
    b = replica(base, "b")
    write(a, ADMIN, "node.capabilities", {"node": NODE.public_key_hex, "capabilities": ["edge"]})
    write(a, ADMIN, "node.capabilities", {"node": NODE.public_key_hex,
                                          "capabilities": ["builder"]})
    sync(b, a)
    assert caps(b, NODE.public_key_hex) == caps(a, NODE.public_key_hex) == ["builder"]


async def test_a_member_pushing_node_capabilities_over_the_api_is_refused(node, client) -> None:
    """A hostile member signs node.capabilities for itself (to become an edge) and pushes it
    through the sync route: refused with one line, the nodes view unchanged."""
    from formation.api import state_models as sm
    from formation.api import state_routes as sr
    from formation.node.state import wire

    member = await found_with_member(client)
    store = node.parts.state.require_store()
    before = await store.view("nodes")
    hostile = craft(member, store.replica, "node.capabilities",
                    {"node": member.public_key_hex, "capabilities": ["edge", "builder"]},
                    network=store.replica.network)
    pushed = await client.call(sr.state_sync_push, sm.OpBatch(ops=wire.pack([hostile]),
                                                              count=1))
    assert (pushed.accepted, pushed.refused) == (0, 1)
    [why] = pushed.refusals
    assert (why.reason, why.message) == ("unauthorized",
                                         "node.capabilities: only a network admin may do this")
    assert await store.view("nodes") == before


def test_a_node_removed_and_admitted_again_has_no_capabilities(base) -> None:
    r = found(base, ADMIN, [NODE])
    write(r, ADMIN, "node.capabilities", {"node": NODE.public_key_hex, "capabilities": ["edge"]})
    write(r, ADMIN, "node.remove", {"node": NODE.public_key_hex})
    assert NODE.public_key_hex not in {n["key"] for n in r.view("nodes")}
    write(r, ADMIN, "node.admit", {"node": NODE.public_key_hex, "roles": ["member"]})
    assert caps(r, NODE.public_key_hex) == []
    rebuilt = views(r)
    r.rebuild()
    assert views(r) == rebuilt
