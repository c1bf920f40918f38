"""Delegation in the store: an account grants another key exactly some actions on some of its
instances until a time; the grantee's ops are judged as the account's, at the op's own time,
against the grant's revocations in the op's causal past. Real replicas on real SQLite, real
Ed25519 keys; hostile ops are signed by hand (statekit.craft)."""

from __future__ import annotations

from pathlib import Path

import pytest
from statekit import craft, found, replica, spec, sync, write

from formation.identity import NodeIdentity
from formation.node.state.op import Op, decode

ADMIN, NODE = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (1, 2))
ALICE, BOB, DELEGATE = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (10, 12, 30))
HOUR = 3_600_000


@pytest.fixture
def base(short_tmp: Path) -> Path:
    return short_tmp


def verdict(r, raw: bytes):
    return r.ingest([raw]).verdicts[0]


def accepted(r, who: NodeIdentity, kind: str, payload: dict, **kw) -> Op:
    raw = craft(who, r, kind, payload, **kw)
    v = verdict(r, raw)
    assert v.status == "accepted", v
    return decode(raw)


def refused(r, who: NodeIdentity, kind: str, payload: dict, **kw) -> tuple[str, str]:
    v = verdict(r, craft(who, r, kind, payload, **kw))
    assert v.status == "refused", v
    return v.reason, v.message


def tenants(base: Path, name: str = "a", **quotas):
    """alice owns web-1 and web-2; bob is another account; DELEGATE is nobody's key."""
    r = found(base, ADMIN, [NODE], name)
    alice = {"name": "alice", "keys": [ALICE.public_key_hex], "roles": ["user"]}
    if quotas:
        alice["quotas"] = quotas
    write(r, ADMIN, "account.set", alice)
    write(r, ADMIN, "account.set", {"name": "bob", "keys": [BOB.public_key_hex],
                                    "roles": ["user"]})
    web = [accepted(r, ALICE, "instance.create", {"name": n, "spec": spec(), "account": "alice"})
           for n in ("web-1", "web-2")]
    return r, web


def grant(r, who=ALICE, account="alice", until=None, **scope) -> Op:
    scope = scope or {"actions": ["instance.start", "instance.stop"], "on": "web-1"}
    until = until or r.clock.last[0] + HOUR
    return accepted(r, who, "grant.set", {"account": account, "grantee": DELEGATE.public_key_hex,
                                          "until_ms": until, **scope})


def use(g: Op, instance: Op | None = None, **payload) -> dict:
    out = {"grant": g.id.hex(), "account": "alice", **payload}
    if instance is not None:
        out["instance"] = instance.id.hex()
    return out


def instance(r, name: str) -> dict:
    return next(i for i in r.view("instances") if i["name"] == name)


def test_a_grantee_does_exactly_what_was_granted(base) -> None:
    r, (web1, web2) = tenants(base)
    g = grant(r)
    accepted(r, DELEGATE, "instance.update", use(g, web1, desired="stopped"))
    assert instance(r, "web-1")["desired"] == "stopped"
    accepted(r, DELEGATE, "instance.update", use(g, web1, desired="running", boot=1))
    assert instance(r, "web-1")["desired"] == "running"
    # another instance, another action, a create: refused, nothing written
    for kind, payload in [
        ("instance.update", use(g, web2, desired="stopped")),
        ("instance.update", use(g, web1, spec=spec(vcpus=2))),
        ("instance.update", use(g, web1, desired="stopped", boot=3)),
        ("instance.delete", use(g, web1)),
        ("instance.create", use(g, name="web-1x", spec=spec())),
    ]:
        reason, message = refused(r, DELEGATE, kind, payload)
        assert reason == "unauthorized" and message.startswith("payload.grant: does not allow")
    assert instance(r, "web-2")["desired"] == "running"
    assert len(r.view("instances")) == 2
    # without naming the grant, the key is nobody's
    assert refused(r, DELEGATE, "instance.update",
                   {"instance": web1.id.hex(), "desired": "stopped"})[0] == "unauthorized"


def test_a_prefix_grant_creates_for_the_account_within_its_quota(base) -> None:
    r, _web = tenants(base, instances=3)
    g = grant(r, actions=["instance.create", "instance.delete"], prefix="ci-")
    ci = accepted(r, DELEGATE, "instance.create", use(g, name="ci-1", spec=spec()))
    made = instance(r, "ci-1")
    assert made["account"] == "alice"  # ownership stays the account's
    assert refused(r, DELEGATE, "instance.create", use(g, name="web-3", spec=spec()))[0] \
        == "unauthorized"
    reason, message = refused(r, DELEGATE, "instance.create", use(g, name="ci-2", spec=spec()))
    assert reason == "quota" and "alice" in message  # the account's quota: 3 instances
    accepted(r, DELEGATE, "instance.delete", use(g, ci))
    accepted(r, DELEGATE, "instance.create", use(g, name="ci-2", spec=spec()))
    # the create names the granting account, not another
    assert refused(r, DELEGATE, "instance.create",
                   {**use(g, name="ci-3", spec=spec()), "account": "bob"})[0] == "invalid"


def test_a_grant_ends_at_its_expiry_judged_at_the_use_s_own_time(base) -> None:
    r, (web1, _web2) = tenants(base)
    at = r.clock.last[0] + 1
    g = grant(r, until=at + 50)
    accepted(r, DELEGATE, "instance.update", use(g, web1, desired="stopped"),
             hlc=(at + 49, 0))
    reason, message = refused(r, DELEGATE, "instance.update", use(g, web1, desired="running"),
                              hlc=(at + 50, 0))
    assert reason == "unauthorized" and "expired" in message
    # a grant must end after its own time
    assert refused(r, ALICE, "grant.set", {
        "account": "alice", "grantee": DELEGATE.public_key_hex, "actions": ["instance.stop"],
        "on": "web-1", "until_ms": 5})[1].startswith("payload.until_ms")


def test_a_revoked_grant_is_refused_where_the_revocation_is_known(base) -> None:
    r, (web1, _web2) = tenants(base)
    g = grant(r)
    other = replica(base, "b")
    sync(other, r)
    stale = craft(DELEGATE, other, "instance.update", use(g, web1, desired="stopped"))
    accepted(r, ALICE, "grant.revoke", {"grant": g.id.hex()})
    reason, message = refused(r, DELEGATE, "instance.update", use(g, web1, desired="stopped"))
    assert reason == "unauthorized" and message.startswith("payload.grant: revoked")
    assert instance(r, "web-1")["desired"] == "running"
    [view] = [x for x in r.view("grants") if x["key"] == g.id.hex()]
    assert view["revoked"] is True and view["revoked_by"] == ALICE.public_key_hex
    # a use signed before it learned of the revocation (concurrent with it) is judged the same
    # everywhere: accepted on both replicas, in either order, and void (test_grant_void.py)
    assert verdict(other, stale).status == "accepted"
    assert verdict(r, stale).status == "accepted"
    assert instance(other, "web-1")["desired"] == "stopped"
    sync(other, r)
    assert instance(other, "web-1")["desired"] == "running"
    assert other.view("grants") == r.view("grants")
    assert other.view("instances") == r.view("instances")


def test_who_may_grant_and_revoke(base) -> None:
    r, (web1, _web2) = tenants(base)
    payload = {"account": "alice", "grantee": DELEGATE.public_key_hex,
               "actions": ["instance.stop"], "on": "web-1", "until_ms": r.clock.last[0] + HOUR}
    assert refused(r, BOB, "grant.set", payload)[0] == "unauthorized"  # not bob's to grant
    assert refused(r, NODE, "grant.set", payload)[0] == "unauthorized"  # nor a node's
    assert refused(r, ADMIN, "grant.set", payload)[0] == "unauthorized"
    for bad, field in [({"actions": ["image.build"]}, "payload.actions"),
                       ({"actions": []}, "payload.actions"),
                       ({"prefix": "ci-"}, "payload.on"),
                       ({"grantee": NODE.public_key_hex}, "payload.grantee"),
                       ({"grantee": ALICE.public_key_hex}, "payload.grantee"),
                       ({"until_ms": "friday"}, "payload.until_ms"),
                       ({"note": "x"}, "payload.note")]:
        reason, message = refused(r, ALICE, "grant.set", {**payload, **bad})
        assert reason == "invalid" and message.startswith(field), message
    # bob may grant for bob, but that gives nothing over alice's instance
    by_bob = accepted(r, BOB, "grant.set", {**payload, "account": "bob"})
    reason, message = refused(r, DELEGATE, "instance.update",
                              {**use(by_bob, web1, desired="stopped"), "account": "bob"})
    assert reason == "unauthorized" and "account 'alice'" in message
    # revoking: not bob (another account's grant), not a member node; the admin node may
    g = grant(r)
    assert refused(r, BOB, "grant.revoke", {"grant": g.id.hex()})[0] == "unauthorized"
    assert refused(r, NODE, "grant.revoke", {"grant": g.id.hex()})[0] == "unauthorized"
    assert refused(r, ALICE, "grant.revoke", {"grant": web1.id.hex()})[0] == "invalid"
    accepted(r, ADMIN, "grant.revoke", {"grant": g.id.hex()})


def test_a_grant_dies_with_its_granter_s_key_or_account(base) -> None:
    r, (web1, _web2) = tenants(base)
    g = grant(r)
    accepted(r, DELEGATE, "instance.update", use(g, web1, desired="stopped"))
    write(r, ADMIN, "account.set", {"name": "alice", "keys": [BOB.public_key_hex[:-2] + "00"],
                                    "roles": ["user"]})
    reason, message = refused(r, DELEGATE, "instance.update", use(g, web1, desired="running"))
    assert reason == "unauthorized" and "no longer holds" in message
    write(r, ADMIN, "account.remove", {"name": "alice"})
    assert refused(r, DELEGATE, "instance.update", use(g, web1, desired="running"))[0] \
        == "unauthorized"


def test_a_member_node_cannot_forge_a_use_or_a_grant(base) -> None:
    r, (web1, _web2) = tenants(base)
    g = grant(r)
    # the node signs a use itself: grant (and account) are no fields of a node's update
    reason, message = refused(r, NODE, "instance.update", use(g, web1, desired="stopped"))
    assert reason == "invalid" and message.endswith("not a field of this kind"), message
    # the node alters a grantee's signed use: the signature no longer verifies
    raw = bytearray(craft(DELEGATE, r, "instance.update", use(g, web1, desired="stopped")))
    i = raw.find(b"stopped")
    raw[i:i + 7] = b"running"
    assert verdict(r, bytes(raw)).status == "refused"
    # a grant naming a missing op waits; one naming another kind is refused
    assert refused(r, DELEGATE, "instance.update", use(web1, web1, desired="stopped"))[0] \
        == "invalid"
