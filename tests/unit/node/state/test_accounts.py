"""Accounts (tenants) in the store: account.set/remove by admins only, ops signed by an account's
own key, ownership of its instances and its quotas, each judged from the op's causal past so
every replica gives the same verdict. Real replicas on real SQLite, real Ed25519 keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from statekit import craft, found, replica, spec, sync, write

from formation.identity import NodeIdentity
from formation.node.state.op import decode

ADMIN, NODE = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (1, 2))
ALICE, ALICE2, BOB, CAROL = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (10, 11, 12, 13))


@pytest.fixture
def base(short_tmp: Path) -> Path:
    return short_tmp


def account(name: str, *keys: NodeIdentity, roles=("user",), **quotas) -> dict:
    payload: dict = {"name": name, "keys": [k.public_key_hex for k in keys], "roles": list(roles)}
    if quotas:
        payload["quotas"] = quotas
    return payload


def tenants(base: Path, name: str = "a", **quotas):
    r = found(base, ADMIN, [NODE], name)
    write(r, ADMIN, "account.set", account("alice", ALICE, ALICE2, **quotas))
    write(r, ADMIN, "account.set", account("bob", BOB))
    return r


def verdict(r, raw: bytes):
    return r.ingest([raw]).verdicts[0]


def accepted(r, who: NodeIdentity, kind: str, payload: dict, **kw):
    raw = craft(who, r, kind, payload, **kw)
    v = verdict(r, raw)
    assert v.status == "accepted", v
    return decode(raw)


def refused(r, who: NodeIdentity, kind: str, payload: dict, **kw) -> tuple[str, str]:
    v = verdict(r, craft(who, r, kind, payload, **kw))
    assert v.status == "refused", v
    return v.reason, v.message


def create(name: str, owner: str | None = "alice", **over) -> dict:
    payload = {"name": name, "spec": spec(**over)}
    if owner is not None:
        payload["account"] = owner
    return payload


def test_account_set_checks_its_payload_and_only_admins_write_accounts(base) -> None:
    r = found(base, ADMIN, [NODE])
    bad = [
        ({"name": "x", "keys": [], "roles": ["user"]}, "payload.keys"),
        ({"name": "x", "keys": [ALICE.public_key_hex] * 2, "roles": ["user"]}, "payload.keys"),
        ({"name": "x", "keys": ["ab"], "roles": ["user"]}, "payload.keys"),
        ({"name": "x", "keys": [ALICE.public_key_hex], "roles": ["root"]}, "payload.roles"),
        ({**account("x", ALICE), "quotas": {"gpus": 1}}, "payload.quotas.gpus"),
        ({**account("x", ALICE), "quotas": {"vcpus": -1}}, "payload.quotas.vcpus"),
        ({**account("x", ALICE), "owner": "me"}, "payload.owner"),
        (account("x", NODE), "payload.keys"),  # a node's key is no account's
    ]
    for payload, field in bad:
        reason, message = refused(r, ADMIN, "account.set", payload)
        assert reason == "invalid" and message.startswith(field), message
    nine = [NodeIdentity.from_seed(bytes([40 + i]) * 32) for i in range(9)]
    assert refused(r, ADMIN, "account.set", account("x", *nine))[1].startswith("payload.keys")
    assert refused(r, NODE, "account.set", account("x", ALICE))[0] == "unauthorized"
    write(r, ADMIN, "account.set", account("alice", ALICE, vcpus=4, instances=2))
    reason, message = refused(r, ADMIN, "account.set", account("bob", ALICE))
    assert "a key of account 'alice'" in message
    assert refused(r, NODE, "account.remove", {"name": "alice"})[0] == "unauthorized"
    [alice] = r.view("accounts")
    assert alice["key"] == "alice" and alice["quotas"] == {"vcpus": 4, "instances": 2}


def test_an_account_key_creates_its_own_instances_and_nothing_else(base) -> None:
    r = tenants(base)
    op = accepted(r, ALICE, "instance.create", create("web"))
    [inst] = r.view("instances")
    assert inst["account"] == "alice" and inst["owner"] == ALICE.public_key_hex
    assert inst["key"] == op.id.hex()
    # a tenant's create names its own account, never another's, never none
    assert "payload.account" in refused(r, ALICE, "instance.create", create("x", "bob"))[1]
    assert "payload.account" in refused(r, ALICE, "instance.create", create("x", None))[1]
    # a node may not make an instance an account's
    assert refused(r, NODE, "instance.create", create("x"))[0] == "unauthorized"
    # kinds an account key may not sign at all
    for kind, payload in [("node.record", {"name": "evil"}),
                          ("dns.set", {"name": "a", "type": "A", "value": "1.2.3.4"}),
                          ("account.set", account("alice", ALICE, roles=("admin",))),
                          ("instance.place", {"instance": op.id.hex(),
                                              "node": ALICE.public_key_hex})]:
        reason, message = refused(r, ALICE, kind, payload)
        assert reason == "unauthorized", message
    reason, message = refused(r, ALICE, "instance.update",
                              {"instance": op.id.hex(), "move": {"to": NODE.public_key_hex,
                                                                 "mode": "live", "n": 1}})
    assert reason == "unauthorized" and "payload.move" in message
    # a key of no account
    assert "neither a member nor" in refused(r, CAROL, "instance.create", create("x"))[1]


def test_only_the_account_its_admins_and_network_admins_control_its_instances(base) -> None:
    r = tenants(base)
    web = accepted(r, ALICE, "instance.create", create("web")).id.hex()
    for who in (BOB, NODE):  # another account, and a member node that is no admin
        for kind, payload in [("instance.update", {"instance": web, "desired": "stopped"}),
                              ("instance.delete", {"instance": web})]:
            reason, message = refused(r, who, kind, payload)
            assert reason == "unauthorized" and "account 'alice'" in message
    accepted(r, ALICE2, "instance.update", {"instance": web, "desired": "stopped"})
    write(r, ADMIN, "instance.update", {"instance": web, "desired": "running"})
    write(r, ADMIN, "account.set", account("ops", CAROL, roles=("admin",)))
    accepted(r, CAROL, "instance.update", {"instance": web, "boot": 1})
    # and a node's own instance is not an account's to touch (but an admin account's)
    mine = write(r, NODE, "instance.create", create("n", None)).id.hex()
    assert refused(r, BOB, "instance.delete", {"instance": mine})[0] == "unauthorized"
    accepted(r, CAROL, "instance.delete", {"instance": mine})


def test_a_removed_account_or_a_dropped_key_is_refused(base) -> None:
    r = tenants(base)
    accepted(r, BOB, "instance.create", create("b1", "bob"))
    write(r, ADMIN, "account.set", account("alice", ALICE))  # ALICE2 dropped
    assert refused(r, ALICE2, "instance.create", create("x"))[0] == "unauthorized"
    accepted(r, ALICE, "instance.create", create("a1"))
    write(r, ADMIN, "account.remove", {"name": "bob"})
    reason, message = refused(r, BOB, "instance.create", create("b2", "bob"))
    assert reason == "unauthorized" and "neither a member nor" in message
    assert [a["key"] for a in r.view("accounts")] == ["alice"]


def test_an_op_the_removal_did_not_see_is_accepted_everywhere_and_void(base) -> None:
    """A stolen key signing "before" its account's removal (old parents): every replica accepts
    it (its past does not hold the removal) and no replica lets it take effect; ops the removal
    saw stand, whichever order the ops arrive in."""
    r = tenants(base)
    kept = accepted(r, BOB, "instance.create", create("seen", "bob"))
    before = sorted(r.heads)
    top = r.clock.last[0]
    write(r, ADMIN, "account.remove", {"name": "bob"})
    other = replica(base, "b")
    sync(other, r)
    backdated = craft(BOB, r, "instance.create", create("backdated", "bob"), parents=before,
                      hlc=(top + 5, 0))
    assert verdict(r, backdated).status == verdict(other, backdated).status == "accepted"
    for x in (r, other):
        assert [i["name"] for i in x.view("instances")] == ["seen"]
        assert x.view("instances")[0]["key"] == kept.id.hex()
    # the other order: the concurrent op first, the removal later, on a fresh replica
    third = replica(base, "c")
    ops = [raw for _, raw in r.log_page(0, 10**9)]
    removal = next(raw for raw in ops if decode(raw).kind == "account.remove")
    third.ingest([raw for raw in ops if raw != removal])
    assert sorted(i["name"] for i in third.view("instances")) == ["backdated", "seen"]
    third.ingest([removal])
    assert [i["name"] for i in third.view("instances")] == ["seen"]
    for x in (r, other, third):
        assert x.rebuild()["equal"] is True


def test_a_dropped_key_loses_what_it_signed_concurrently_the_kept_key_does_not(base) -> None:
    r = tenants(base)
    before = sorted(r.heads)
    top = r.clock.last[0]
    write(r, ADMIN, "account.set", account("alice", ALICE))  # ALICE2 dropped
    dropped = craft(ALICE2, r, "instance.create", create("by-dropped"), parents=before,
                    hlc=(top + 5, 0))
    kept = craft(ALICE, r, "instance.create", create("by-kept"), parents=before,
                 hlc=(top + 6, 0))
    assert [verdict(r, x).status for x in (dropped, kept)] == ["accepted", "accepted"]
    assert [i["name"] for i in r.view("instances")] == ["by-kept"]


def test_quotas_are_checked_over_the_accounts_instances(base) -> None:
    r = tenants(base, instances=2, vcpus=3)
    a = accepted(r, ALICE, "instance.create", create("a", vcpus=2)).id.hex()
    reason, message = refused(r, ALICE2, "instance.create", create("b", vcpus=2))
    assert reason == "quota" and "would use 4 vcpus, its quota is 3" in message
    accepted(r, ALICE2, "instance.create", create("b", vcpus=1))
    reason, message = refused(r, ALICE, "instance.create", create("c"))
    assert reason == "quota" and "3 instances" in message
    # a resize up past the quota is refused, down is fine; bob has no quota
    assert refused(r, ALICE, "instance.update", {"instance": a, "spec": spec(vcpus=3)})[0] \
        == "quota"
    accepted(r, ALICE, "instance.update", {"instance": a, "spec": spec(vcpus=1)})
    accepted(r, ALICE, "instance.delete", {"instance": a})
    accepted(r, ALICE, "instance.create", create("c", vcpus=2))
    for i in range(3):
        accepted(r, BOB, "instance.create", create(f"b{i}", "bob", vcpus=8))
    # a quota lowered below what is used: nothing grows, shrinking still works
    write(r, ADMIN, "account.set", account("alice", ALICE, ALICE2, vcpus=1))
    c = next(i["key"] for i in r.view("instances") if i["name"] == "c")
    assert refused(r, ALICE, "instance.update", {"instance": c, "spec": spec(vcpus=3)})[0] \
        == "quota"
    accepted(r, ALICE, "instance.update", {"instance": c, "spec": spec(vcpus=1)})


def test_quota_usage_is_that_of_the_ops_causal_past_on_every_replica(base) -> None:
    """A replica holding an extra instance the op never saw judges it exactly like one that
    does not hold it: an op's verdict depends only on its past."""
    r = tenants(base, instances=1)
    fork = sorted(r.heads)
    top = r.clock.last[0]
    other = replica(base, "b")
    sync(other, r)
    accepted(r, ALICE, "instance.create", create("seen-here-only"))
    # ALICE2 signs with the older heads: its past holds no instance of alice
    raw = craft(ALICE2, r, "instance.create", create("concurrent"), parents=fork,
                hlc=(top + 10, 0))
    assert verdict(r, raw).status == verdict(other, raw).status == "accepted"
    # an op that saw both is refused on both, once the other has the same ops
    sync(other, r)
    late = craft(ALICE, r, "instance.create", create("third"))
    assert verdict(r, late).reason == verdict(other, late).reason == "quota"
    assert len(r.view("instances")) == len(other.view("instances")) == 2
    # together they exceed the quota: the later created is marked on every replica
    for x in (r, other):
        marks = {i["name"]: i.get("over_quota", False) for i in x.view("instances")}
        assert marks == {"seen-here-only": False, "concurrent": True}


def test_a_relayed_op_cannot_be_forged_altered_or_written_twice(base) -> None:
    r = tenants(base)
    raw = craft(ALICE, r, "instance.create", create("web"))
    # a node signing in alice's name: the signature is not alice's
    forged = craft(NODE, r, "instance.create", create("web"))
    body_start = forged.index(NODE.public_key)
    forged = forged[:body_start] + ALICE.public_key + forged[body_start + 32:]
    assert verdict(r, forged).status == "refused"
    # a node changing what alice signed (a bigger machine): the signature fails
    altered = raw.replace(b"web", b"wex")
    assert altered != raw and verdict(r, altered).status == "refused"
    # the op itself, then the same bytes again: written once
    assert verdict(r, raw).status == "accepted"
    assert verdict(r, raw).status == "duplicate"
    assert [i["name"] for i in r.view("instances")] == ["web"]


def test_a_tenant_cannot_stamp_time_ahead_or_behind(base) -> None:
    r = tenants(base)
    now = r.clock.wall()
    ahead = verdict(r, craft(ALICE, r, "instance.create", create("later"),
                             hlc=(now + 3_600_000, 0)))
    assert ahead.status == "buffered" and ahead.reason == "future"
    assert len(r.held) == 0  # not a member: no room is taken in the held buffer
    behind = verdict(r, craft(ALICE, r, "instance.create", create("earlier"), hlc=(1, 0)))
    assert behind.status == "refused" and behind.reason == "causality"
    assert r.view("instances") == []
