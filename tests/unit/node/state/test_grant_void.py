"""A grant use concurrent with its grant's revocation is void (grant_void.py): accepted, as its
causal past allows, but without effect on every replica that holds the revocation, in either
arrival order. Real replicas on real SQLite, real keys; hostile ops signed by hand."""

from __future__ import annotations

from pathlib import Path

import pytest
from statekit import all_raws, craft, found, replica, spec, sync, views, write

from formation.identity import NodeIdentity
from formation.node.state.op import Op, decode

ADMIN, NODE = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (1, 2))
ALICE, DELEGATE = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (10, 30))
HOUR = 3_600_000


@pytest.fixture
def base(short_tmp: Path) -> Path:
    return short_tmp


def accepted(r, who: NodeIdentity, kind: str, payload: dict, **kw) -> Op:
    raw = craft(who, r, kind, payload, **kw)
    v = r.ingest([raw]).verdicts[0]
    assert v.status == "accepted", v
    return decode(raw)


def alice_with_grant(base: Path, name: str = "a", **scope):
    """alice owns web-1; DELEGATE may start and stop it (or `scope`) for an hour."""
    r = found(base, ADMIN, [NODE], name)
    write(r, ADMIN, "account.set", {"name": "alice", "keys": [ALICE.public_key_hex],
                                    "roles": ["user"]})
    web1 = accepted(r, ALICE, "instance.create",
                    {"name": "web-1", "spec": spec(), "account": "alice"})
    scope = scope or {"actions": ["instance.start", "instance.stop"], "on": "web-1"}
    g = accepted(r, ALICE, "grant.set", {"account": "alice", "grantee": DELEGATE.public_key_hex,
                                         "until_ms": r.clock.last[0] + HOUR, **scope})
    return r, web1, g


def use(g: Op, **payload) -> dict:
    return {"grant": g.id.hex(), "account": "alice", **payload}


def desired(r, name: str = "web-1") -> str:
    return next(i for i in r.view("instances") if i["name"] == name)["desired"]


def test_a_use_the_revocation_saw_stands_and_one_it_did_not_see_is_void(base) -> None:
    r, web1, g = alice_with_grant(base)
    accepted(r, DELEGATE, "instance.update", use(g, instance=web1.id.hex(), desired="stopped"))
    other = replica(base, "b")
    sync(other, r)
    # the grantee, on replica b, starts web-1 not knowing of the revocation written on a
    stale = craft(DELEGATE, other, "instance.update",
                  use(g, instance=web1.id.hex(), desired="running", boot=1))
    assert other.ingest([stale]).verdicts[0].status == "accepted"
    assert desired(other) == "running"
    accepted(r, ALICE, "grant.revoke", {"grant": g.id.hex()})
    # revocation first, then the use: accepted (its past holds no revocation), void
    assert r.ingest([stale]).verdicts[0].status == "accepted"
    assert desired(r) == "stopped"  # the use the revocation saw stands
    # the use first, then the revocation: the views are rebuilt without its effect
    sync(other, r)
    assert desired(other) == "stopped"
    assert views(other) == views(r)
    for rep in (r, other):
        assert rep.rebuild()["equal"] is True


def test_a_backdated_use_withholding_the_revocation_is_void_whatever_its_hlc(base) -> None:
    """A grantee colluding with a hostile member: the use names the parents from before the
    revocation and an HLC below it. Accepted (nothing in its past refuses it), and void."""
    r, web1, g = alice_with_grant(base)
    before = sorted(r.heads)
    at = r.clock.last[0]
    rev = accepted(r, ALICE, "grant.revoke", {"grant": g.id.hex()}, hlc=(at + 5, 0))
    raw = craft(DELEGATE, r, "instance.update",
                use(g, instance=web1.id.hex(), desired="stopped"), parents=before,
                hlc=(at + 1, 0))
    assert decode(raw).hlc < rev.hlc
    assert r.ingest([raw]).verdicts[0].status == "accepted"
    assert desired(r) == "running"
    # any arrival order on a fresh replica gives the same
    for name, order in (("x", [raw, *all_raws(r)]), ("y", all_raws(r)[::-1])):
        fresh = replica(base, name)
        fresh.ingest(order)
        assert len(fresh.buffer) == 0 and views(fresh) == views(r)


def test_an_instance_created_by_a_void_use_never_existed(base) -> None:
    r, _web1, g = alice_with_grant(base, actions=["instance.create"], prefix="ci-")
    other = replica(base, "b")
    sync(other, r)
    made = craft(DELEGATE, other, "instance.create", use(g, name="ci-1", spec=spec()))
    other.ingest([made])
    ci = decode(made).id.hex()
    # on b the account updates it and a node reports it placed: all after the create
    write(other, ALICE, "instance.update", {"instance": ci, "desired": "stopped"})
    write(other, NODE, "instance.place", {"instance": ci, "node": NODE.public_key_hex})
    assert {i["name"] for i in other.view("instances")} == {"web-1", "ci-1"}
    accepted(r, ALICE, "grant.revoke", {"grant": g.id.hex()})
    sync(r, other)
    sync(other, r)
    for rep in (r, other):
        assert [i["name"] for i in rep.view("instances")] == ["web-1"], rep.view("instances")
        assert rep.rebuild()["equal"] is True
    assert views(other) == views(r)


def test_two_revocations_a_use_stands_only_if_every_one_saw_it(base) -> None:
    """Concurrent revocations by alice and by the admin: the use one of them saw and the other
    did not is void, on every replica, in any order."""
    r, web1, g = alice_with_grant(base)
    other = replica(base, "b")
    sync(other, r)
    u = accepted(other, DELEGATE, "instance.update",
                 use(g, instance=web1.id.hex(), desired="stopped"))
    by_admin = write(other, ADMIN, "grant.revoke", {"grant": g.id.hex()})  # saw the use
    assert desired(other) == "stopped"
    accepted(r, ALICE, "grant.revoke", {"grant": g.id.hex()})  # did not
    sync(other, r)
    sync(r, other)
    assert u.id in {decode(x).id for x in all_raws(r)} and by_admin.hlc > u.hlc
    for rep in (r, other):
        assert desired(rep) == "running"
    assert views(other) == views(r)


def test_a_late_revocation_seals_an_expired_grant_against_backdated_uses(base) -> None:
    """Expiry alone is judged at the use's own HLC, which a hostile member may set back with
    old parents: without a revocation such a use stands (the documented limit). Revoking the
    grant after its expiry voids it, and keeps the use the revocation saw."""
    r, web1, _g = alice_with_grant(base)
    at = r.clock.last[0] + 1
    g = accepted(r, ALICE, "grant.set", {
        "account": "alice", "grantee": DELEGATE.public_key_hex,
        "actions": ["instance.stop", "instance.start"], "on": "web-1", "until_ms": at + 20},
                 hlc=(at, 0))
    accepted(r, DELEGATE, "instance.update", use(g, instance=web1.id.hex(), desired="stopped"),
             hlc=(at + 1, 0))
    old = sorted(r.heads)
    rev = craft(ALICE, r, "grant.revoke", {"grant": g.id.hex()}, hlc=(at + 100, 0))
    late = craft(DELEGATE, r, "instance.update",
                 use(g, instance=web1.id.hex(), desired="running", boot=1),
                 parents=old, hlc=(at + 2, 0))  # written after the expiry, stamped before
    unsealed = replica(base, "b")
    unsealed.ingest([*all_raws(r), late])
    assert desired(unsealed) == "running"  # the limit: expiry does not void it
    r.ingest([rev, late])
    assert [v.status for v in r.ingest([rev, late]).verdicts] == ["duplicate", "duplicate"]
    assert desired(r) == "stopped"
    unsealed.ingest([rev])
    assert desired(unsealed) == "stopped"
    assert views(unsealed) == views(r)
    assert r.rebuild()["equal"] is True


def test_a_revocation_and_a_use_it_did_not_see_in_one_batch_on_a_reopened_replica(
        base) -> None:
    """The replica's void bookkeeping starts empty when it opens: a batch bringing both the
    revocation and then the use still voids the use."""
    r, web1, g = alice_with_grant(base)
    before = sorted(r.heads)
    at = r.clock.last[0]
    rev = craft(ALICE, r, "grant.revoke", {"grant": g.id.hex()}, hlc=(at + 5, 0))
    late = craft(DELEGATE, r, "instance.update",
                 use(g, instance=web1.id.hex(), desired="stopped"), parents=before,
                 hlc=(at + 1, 0))
    r.close()
    again = replica(base, "a")
    assert [v.status for v in again.ingest([rev, late]).verdicts] == ["accepted", "accepted"]
    assert desired(again) == "running"
    assert again.rebuild()["equal"] is True


def test_a_use_its_granter_s_key_revocation_did_not_see_is_void(base) -> None:
    """A use is judged as the granter's key's own op, so it follows that key's revocation
    rule too (tenant_revocation.py): the admin drops alice's granting key while, elsewhere,
    the grantee stops web-1. The stop the revocation did not see is void, in either order;
    the one it saw stands."""
    r, web1, g = alice_with_grant(base)
    accepted(r, DELEGATE, "instance.update", use(g, instance=web1.id.hex(), desired="stopped"))
    other = replica(base, "b")
    sync(other, r)
    stale = accepted(other, DELEGATE, "instance.update",
                     use(g, instance=web1.id.hex(), desired="running", boot=1))
    assert desired(other) == "running"
    spare = NodeIdentity.from_seed(bytes([11]) * 32)
    write(r, ADMIN, "account.set", {"name": "alice", "keys": [spare.public_key_hex],
                                    "roles": ["user"]})
    sync(r, other)  # the revocation first, then the use
    sync(other, r)  # the use first, then the revocation
    assert stale.id in {decode(x).id for x in all_raws(r)}
    for rep in (r, other):
        assert desired(rep) == "stopped"
        assert rep.rebuild()["equal"] is True
    assert views(other) == views(r)


def test_an_instance_a_use_made_unseen_by_its_granter_s_key_revocation_never_existed(
        base) -> None:
    r, _web1, g = alice_with_grant(base, actions=["instance.create"], prefix="ci-")
    other = replica(base, "b")
    sync(other, r)
    made = accepted(other, DELEGATE, "instance.create", use(g, name="ci-1", spec=spec()))
    write(other, NODE, "instance.place", {"instance": made.id.hex(),
                                          "node": NODE.public_key_hex})
    spare = NodeIdentity.from_seed(bytes([11]) * 32)
    write(r, ADMIN, "account.set", {"name": "alice", "keys": [spare.public_key_hex],
                                    "roles": ["user"]})
    sync(r, other)
    sync(other, r)
    for rep in (r, other):
        assert [i["name"] for i in rep.view("instances")] == ["web-1"], rep.view("instances")
        assert rep.rebuild()["equal"] is True
    assert views(other) == views(r)


def test_a_log_from_before_the_uses_index_is_indexed_once_when_opened(base) -> None:
    """A database written before uses were indexed per grant: opening it indexes them, so a
    revocation arriving later still finds the use it did not see."""
    r, web1, g = alice_with_grant(base)
    before = sorted(r.heads)
    stale = accepted(r, DELEGATE, "instance.update",
                     use(g, instance=web1.id.hex(), desired="stopped"))
    r.db.execute("DELETE FROM tenant_ops WHERE account LIKE 'uses:%'")
    r.db.execute("DELETE FROM meta WHERE key='grant_uses'")
    rev = craft(ALICE, r, "grant.revoke", {"grant": g.id.hex()}, parents=before)
    r.close()
    again = replica(base, "a")
    assert again.db.execute("SELECT op FROM tenant_ops WHERE account LIKE 'uses:%'").fetchall() \
        == [(stale.id,)]
    assert again.ingest([rev]).verdicts[0].status == "accepted"
    assert desired(again) == "running"


def test_taking_uses_out_equals_rebuilding_every_view(base) -> None:
    """A revocation that missed several applied uses (stops and starts with boot counters, a
    delete) among the account's own updates: the uses are taken out of the views without the
    full rebuild, and the views equal a full rebuild's and a fresh replica's."""
    r, web1, g = alice_with_grant(base, actions=["instance.update", "instance.delete"],
                                  prefix="web-")
    web2 = accepted(r, ALICE, "instance.create",
                    {"name": "web-2", "spec": spec(), "account": "alice"})
    other = replica(base, "b")
    sync(other, r)
    w1, w2 = web1.id.hex(), web2.id.hex()
    accepted(other, DELEGATE, "instance.update", use(g, instance=w1, desired="stopped"))
    write(other, ALICE, "instance.update", {"instance": w1, "spec": spec(vcpus=2)})
    accepted(other, DELEGATE, "instance.update", use(g, instance=w1, desired="running", boot=3))
    accepted(other, DELEGATE, "instance.update", use(g, instance=w1, spec=spec(vcpus=3)))
    accepted(other, DELEGATE, "instance.delete", use(g, instance=w2))
    assert [i["name"] for i in other.view("instances")] == ["web-1"]
    accepted(r, ALICE, "grant.revoke", {"grant": g.id.hex()})

    def no_full_rebuild() -> None:
        raise AssertionError("the full rebuild ran")

    other._rebuild_views = no_full_rebuild
    sync(other, r)
    [one] = [i for i in other.view("instances") if i["name"] == "web-1"]
    assert (one["desired"], one["spec"]["vcpus"], one.get("boot")) == ("running", 2, None)
    assert {i["name"] for i in other.view("instances")} == {"web-1", "web-2"}
    incremental = views(other)
    assert other.rebuild()["equal"] is True
    fresh = replica(base, "c")
    fresh.ingest(all_raws(other))
    assert views(fresh) == incremental
