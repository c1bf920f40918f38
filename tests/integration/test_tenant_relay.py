"""Tenants through the signed TCP API of real `formation node` processes on loopback (founder F,
members M and H): a key outside the cluster deploys through M; the op is its own (signed by
its key, relayed by M) on every node; it lists only its own instances; it is refused on another
account's instance, past its quota, after its account's removal and with a time stamp far off,
each with one line and nothing written. A hostile member pushing over-quota, other-owner,
altered or removed-account ops straight to its peers is refused by every honest node."""

from __future__ import annotations

import base64
import time

import pytest
from statecluster import NodeProc, call, cleanup, converged

from formation.api import account_models as am
from formation.api import account_routes as ar
from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api.client import ApiError, NodeClient
from formation.identity import NodeIdentity
from formation.node.state import wire
from formation.node.state.op import build_body, decode, sign_body
from formation.tenant_client import relay, sign_draft

ALICE, BOB, CAROL = (NodeIdentity.from_seed(bytes([i]) * 32) for i in (70, 71, 72))
SPEC = {"image": "ab" * 32, "vcpus": 1, "memory_mb": 512, "disk_gb": 5}


@pytest.fixture
def cluster(short_tmp):
    made = [NodeProc(short_tmp, name) for name in ("f", "m", "h")]
    for n in made:
        n.peers = [o.peer_spec for o in made if o is not n]
        n.start()
    yield made
    cleanup(made)


def tcp(node: NodeProc, who: NodeIdentity) -> NodeClient:
    return NodeClient.tcp(f"127.0.0.1:{node.port}", who, timeout_s=20)


async def _append(node: NodeProc, kind: str, payload: dict) -> sm.StateOp:
    return await call(node, sr.state_append, sm.AppendRequest(kind=kind, payload=payload))


async def _instances(node: NodeProc) -> list[dict]:
    return (await call(node, sr.state_view, collection="instances")).items


async def _refused(coro) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await coro
    assert "\n" not in caught.value.body.message
    return caught.value


async def _push(sender: NodeProc, target: NodeProc, raws: list[bytes]) -> sm.PushResult:
    """`sender` (a member) pushes ops straight to `target`'s sync endpoint, bypassing the
    tenant API's checks and its own replica's."""
    async with tcp(target, sender.identity) as client:
        return await client.call(sr.state_sync_push, sm.OpBatch(ops=wire.pack(raws),
                                                                 count=len(raws)))


async def _signed_by(node: NodeProc, who: NodeIdentity, kind: str, payload: dict) -> bytes:
    """An op `who` really signed (drafted by `node`), never relayed by the tenant API."""
    async with tcp(node, who) as client:
        draft = await client.call(ar.tenant_draft, am.DraftRequest(kind=kind, payload=payload))
    return base64.b64decode(sign_draft(draft, who, kind, payload))


async def _craft(node: NodeProc, who: NodeIdentity, kind: str, payload: dict) -> bytes:
    """An op signed by `who` by hand on `node`'s current heads, checked by nobody."""
    heads = (await call(node, sr.state_heads)).heads
    network = bytes.fromhex((await call(node, sr.state_status)).network)
    log = (await call(node, sr.state_log, query=sm.LogQuery(after=0, limit=1000))).ops
    mine = max((op for op in log if op.author == who.public_key_hex), key=lambda op: op.seq,
               default=None)
    hlc = max(tuple(op.hlc) for op in log)
    return sign_body(build_body(
        network, who.public_key, (mine.seq + 1) if mine else 1,
        bytes.fromhex(mine.id) if mine else None, [bytes.fromhex(x) for x in heads],
        (hlc[0], hlc[1] + 1), kind, payload), who.sign)


async def test_a_tenant_key_deploys_through_a_member_and_is_held_to_its_account(cluster) -> None:
    f, m, h = cluster
    await call(f, sr.state_create_network, sm.CreateNetworkRequest(name="lab", cidr="10.9.0.0/24"))
    for n in (m, h):
        await _append(f, "node.admit", {"node": n.identity.public_key_hex, "roles": ["member"]})
    await _append(f, "account.set", {"name": "alice", "keys": [ALICE.public_key_hex],
                                      "roles": ["user"], "quotas": {"instances": 1}})
    await _append(f, "account.set", {"name": "bob", "keys": [BOB.public_key_hex],
                                      "roles": ["user"]})
    await converged(cluster)

    async with tcp(m, ALICE) as alice:
        done = await relay(alice, ALICE, "instance.create",
                           {"name": "web", "spec": SPEC, "account": "alice"})
        assert done.status == "accepted"
        mine = await alice.call(ar.tenant_instances)
        assert [i["name"] for i in mine.items] == ["web"]
        account = await alice.call(ar.tenant_account)
        assert account.usage["instances"] == 1 and account.quotas == {"instances": 1}
        over = await _refused(relay(alice, ALICE, "instance.create",
                                    {"name": "web2", "spec": SPEC, "account": "alice"}))
        assert over.status == 403 and "quota" in over.body.message
        taken = await _refused(relay(alice, ALICE, "instance.create",
                                     {"name": "web", "spec": SPEC, "account": "alice"}))
        assert taken.status == 409 and taken.body.message.startswith("name:")
        assert [i["name"] for i in await _instances(m)] == ["web"]  # nothing written
    await converged(cluster)
    for n in cluster:
        [web] = await _instances(n)
        assert web["account"] == "alice" and web["owner"] == ALICE.public_key_hex
        assert web["key"] == done.id
    web_id = done.id

    async with tcp(h, BOB) as bob:
        assert (await bob.call(ar.tenant_instances)).items == []
        other = await _refused(relay(bob, BOB, "instance.delete", {"instance": web_id}))
        assert other.status == 403 and "account 'alice'" in other.body.message
    async with tcp(h, CAROL) as carol:
        stranger = await _refused(relay(carol, CAROL, "instance.create",
                                        {"name": "x", "spec": SPEC, "account": "alice"}))
        assert stranger.status == 401 and "unknown key" in stranger.body.message
    async with tcp(h, m.identity) as node:  # a node's key is no account's
        refused_node = await _refused(node.call(ar.tenant_instances))
        assert refused_node.status == 403 and "keys of accounts" in refused_node.body.message

    # a tenant's op stamped an hour ahead: refused by the relaying node, nothing written
    async with tcp(m, ALICE) as alice:
        draft = await alice.call(ar.tenant_draft, am.DraftRequest(
            kind="instance.update", payload={"instance": web_id, "desired": "stopped"}))
        fields = decode(base64.b64decode(sign_draft(draft, ALICE, "instance.update",
                                                    draft.payload)))
        ahead = sign_body(build_body(fields.network, fields.author, fields.seq, fields.prev,
                                     list(fields.parents), (int(time.time() * 1000) + 3_600_000,
                                                            0), fields.kind, fields.payload),
                          ALICE.sign)
        late = await _refused(alice.call(ar.tenant_submit, am.SignedOp(
            op=base64.b64encode(ahead).decode())))
        assert late.status == 400 and "op.hlc" in late.body.message
        # two drafts: the first relayed, the second (the same seq: a fork) refused
        one = await alice.call(ar.tenant_draft, am.DraftRequest(
            kind="instance.update", payload={"instance": web_id, "boot": 1}))
        two = await alice.call(ar.tenant_draft, am.DraftRequest(
            kind="instance.update", payload={"instance": web_id, "boot": 2}))
        assert one.seq == two.seq
        first = await alice.call(ar.tenant_submit, am.SignedOp(
            op=sign_draft(one, ALICE, "instance.update", one.payload)))
        assert first.status == "accepted"
        retried = await alice.call(ar.tenant_submit, am.SignedOp(
            op=sign_draft(one, ALICE, "instance.update", one.payload)))
        assert (retried.status, retried.id) == ("duplicate", first.id)
        fork = await _refused(alice.call(ar.tenant_submit, am.SignedOp(
            op=sign_draft(two, ALICE, "instance.update", two.payload))))
        assert fork.status == 409 and fork.body.message.startswith("op.seq")
        # a body of alice's own making (old parents, to sign "before" her instances): refused
        old = decode(base64.b64decode(sign_draft(one, ALICE, "instance.update", one.payload)))
        mine = sign_body(build_body(old.network, old.author, old.seq + 1, old.id,
                                    list(old.parents), (old.hlc[0], old.hlc[1] + 1),
                                    "instance.update", {"instance": web_id, "boot": 3}),
                         ALICE.sign)
        undrafted = await _refused(alice.call(ar.tenant_submit, am.SignedOp(
            op=base64.b64encode(mine).decode())))
        assert undrafted.status == 409 and "not a body this node drafted" in \
            undrafted.body.message
        # a relay may not carry another key's op: M cannot pass BOB's off as ALICE's request
        bobs = await _signed_by(h, BOB, "instance.create",
                                {"name": "b", "spec": SPEC, "account": "bob"})
        foreign = await _refused(alice.call(ar.tenant_submit, am.SignedOp(
            op=base64.b64encode(bobs).decode())))
        assert foreign.status == 403 and "op.author" in foreign.body.message

    # the hostile member M pushes straight to F and H: what alice really signed past her
    # quota, the same op altered, and an op of its own claiming alice's instance
    over_quota = await _signed_by(m, ALICE, "instance.create",
                                  {"name": "sneaky", "spec": SPEC, "account": "alice"})
    altered = over_quota.replace(b"sneaky", b"sneakz")
    assert decode(altered).author == ALICE.public_key
    for target in (f, h):
        pushed = await _push(m, target, [over_quota])
        assert pushed.refused == 1 and pushed.refusals[0].reason == "quota"
        pushed = await _push(m, target, [altered])
        assert pushed.refused == 1 and pushed.accepted == 0
    evil = await _craft(m, m.identity, "instance.update",
                        {"instance": web_id, "desired": "stopped"})
    for target in (f, h):
        pushed = await _push(m, target, [evil])
        assert pushed.refused == 1 and pushed.refusals[0].reason == "unauthorized"

    # the account removed: bob's key is refused by the API and by every replica
    await _append(f, "account.remove", {"name": "bob"})
    await converged(cluster)
    async with tcp(h, BOB) as bob:
        gone = await _refused(relay(bob, BOB, "instance.create",
                                    {"name": "b", "spec": SPEC, "account": "bob"}))
        assert gone.status == 401 and "unknown key" in gone.body.message
    async with tcp(f, BOB) as bob:
        draft = await _refused(bob.call(ar.tenant_draft, am.DraftRequest(
            kind="instance.create", payload={"name": "b", "spec": SPEC, "account": "bob"})))
        assert draft.status == 401
    after_removal = await _craft(m, BOB, "instance.create",
                                 {"name": "b", "spec": SPEC, "account": "bob"})
    for target in (f, h):
        pushed = await _push(m, target, [after_removal])
        assert pushed.refused == 1 and pushed.refusals[0].reason == "unauthorized"
    await converged(cluster)
    names = [[i["name"] for i in await _instances(n)] for n in cluster]
    assert names == [["web"]] * 3
