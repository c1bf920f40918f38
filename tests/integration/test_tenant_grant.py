"""Delegation end to end on real `formation node` processes on loopback (founder F, members M
and H): alice grants a colleague's key start and stop on her instance `web` with `formation
grant` through M; the colleague, whose key is no account's, stops `web` through H with
`formation tenant stop --as alice`; every node holds the same grant and the same stopped
instance. What the grant does not allow is refused with one line and nothing written. A hostile
member M pushing straight to its peers a grant of its own making, a node op naming the grant,
an altered use, and (after `formation revoke`) a use the colleague really signed that saw the
revocation: each is refused by every honest node. The same use backdated to before the
revocation (withholding it from its parents) is accepted and void on every node."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from statecluster import NodeProc, call, cleanup, converged

from formation.api import account_routes as ar
from formation.api import grant_routes as gr
from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api.client import ApiError, NodeClient
from formation.client_profile import load_key
from formation.identity import NodeIdentity
from formation.node.state import wire
from formation.node.state.op import build_body, decode, sign_body
from formation.tenant_client import relay

IMAGE = "ab" * 32
SPEC = {"image": IMAGE, "vcpus": 1, "memory_mb": 512, "disk_gb": 5}


@pytest.fixture
def cluster(short_tmp):
    made = [NodeProc(short_tmp, name) for name in ("f", "m", "h")]
    for n in made:
        n.peers = [o.peer_spec for o in made if o is not n]
        n.start()
    yield made
    cleanup(made)


def formation(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "formation", *args], capture_output=True,
                          text=True, timeout=60)


def ok(*args: str) -> dict:
    done = formation(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def one_line_failure(*args: str) -> str:
    done = formation(*args)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    return done.stderr


async def _push(sender: NodeProc, target: NodeProc, raws: list[bytes]) -> sm.PushResult:
    """`sender` (a member) pushes ops straight to `target`'s sync endpoint."""
    async with NodeClient.tcp(f"127.0.0.1:{target.port}", sender.identity,
                              timeout_s=20) as client:
        return await client.call(sr.state_sync_push, sm.OpBatch(ops=wire.pack(raws),
                                                                 count=len(raws)))


async def _tip(node: NodeProc) -> tuple[list[str], tuple[int, int]]:
    """`node`'s heads and the highest HLC of its log: where a backdated op can hang from."""
    log = (await call(node, sr.state_log, query=sm.LogQuery(after=0, limit=1000))).ops
    return (await call(node, sr.state_heads)).heads, max(tuple(op.hlc) for op in log)


async def _craft(node: NodeProc, who, kind: str, payload: dict,
                 at: tuple[list[str], tuple[int, int]] | None = None) -> bytes:
    """An op signed by `who` by hand on `node`'s current heads (or on an older tip `at`),
    checked by nobody."""
    heads = (await call(node, sr.state_heads)).heads
    network = bytes.fromhex((await call(node, sr.state_status)).network)
    log = (await call(node, sr.state_log, query=sm.LogQuery(after=0, limit=1000))).ops
    mine = max((op for op in log if op.author == who.public_key_hex), key=lambda op: op.seq,
               default=None)
    hlc = max(tuple(op.hlc) for op in log)
    if at is not None:
        heads, hlc = at
    return sign_body(build_body(
        network, who.public_key, (mine.seq + 1) if mine else 1,
        bytes.fromhex(mine.id) if mine else None, [bytes.fromhex(x) for x in heads],
        (hlc[0], hlc[1] + 1), kind, payload), who.sign)


async def _web(node: NodeProc) -> dict:
    [web] = [i for i in (await call(node, sr.state_view, collection="instances")).items
             if i["name"] == "web"]
    return web


async def test_a_grantee_does_what_it_was_granted_on_every_node_until_revoked(
        cluster, short_tmp) -> None:
    f, m, h = cluster
    await call(f, sr.state_create_network, sm.CreateNetworkRequest(name="lab", cidr="10.9.0.0/24"))
    for n in (m, h):
        await call(f, sr.state_append, sm.AppendRequest(
            kind="node.admit", payload={"node": n.identity.public_key_hex, "roles": ["member"]}))
    alice_key, colleague_key = short_tmp / "alice.key", short_tmp / "colleague.key"
    ok("key", "create", str(alice_key))
    colleague = ok("key", "create", str(colleague_key))["public_key"]
    f.cli_json("account", "create", "alice", "--key", f"{alice_key}.pub")
    await converged(cluster)
    at = {n: ["--node", f"127.0.0.1:{n.port}"] for n in cluster}
    as_alice = ["--key", str(alice_key)]
    as_colleague = ["--key", str(colleague_key)]

    ok("tenant", "create", "web", "--image", IMAGE, *at[m], *as_alice)
    ok("tenant", "create", "db", "--image", IMAGE, *at[m], *as_alice)
    granted = ok("grant", f"{colleague_key}.pub", "--allow", "start,stop", "--on", "web",
                 "--until", "2h", *at[m], *as_alice)
    grant_id = granted["id"]
    await converged(cluster)
    [held] = ok("grants", *at[h], *as_colleague)["items"]
    assert (held["key"], held["grantee"], held["on"], held["live"]) == (
        grant_id, colleague, "web", True)
    assert [g["key"] for g in ok("grants", *at[f], *as_alice)["items"]] == [grant_id]

    stopped = ok("tenant", "stop", "web", "--as", "alice", *at[h], *as_colleague)
    assert stopped["status"] == "accepted"
    await converged(cluster)
    for n in cluster:
        web = await _web(n)
        assert web["desired"] == "stopped" and web["account"] == "alice"
    # not granted: deleting web, stopping db (client side), and through the API by hand
    assert "no live grant" in one_line_failure("tenant", "rm", "web", "--as", "alice",
                                               *at[h], *as_colleague)
    assert "no such instance" in one_line_failure("tenant", "stop", "db", "--as", "alice",
                                                  *at[h], *as_colleague)
    colleague_id = load_key(colleague_key)
    web_id = (await _web(h))["key"]
    async with NodeClient.tcp(f"127.0.0.1:{h.port}", colleague_id, timeout_s=20) as client:
        with pytest.raises(ApiError) as caught:
            await relay(client, colleague_id, "instance.delete",
                        {"instance": web_id, "grant": grant_id, "account": "alice"})
        assert caught.value.status == 403 and "does not allow" in caught.value.body.message
        with pytest.raises(ApiError) as caught:  # a grantee is no account
            await client.call(ar.tenant_account)
        assert caught.value.status == 403
    # the grants route: a node's key is no tenant (403), a stranger's key is unknown (401)
    for who, status in ((m.identity, 403), (NodeIdentity.generate(), 401)):
        async with NodeClient.tcp(f"127.0.0.1:{h.port}", who, timeout_s=20) as client:
            with pytest.raises(ApiError) as caught:
                await client.call(gr.tenant_grants)
            assert caught.value.status == status

    # the hostile member M, straight to F and H
    forged_grant = await _craft(m, m.identity, "grant.set", {
        "account": "alice", "grantee": m.identity.public_key_hex, "actions": ["instance.delete"],
        "on": "web", "until_ms": 2**50})
    node_use = await _craft(m, m.identity, "instance.update", {
        "instance": web_id, "desired": "running", "grant": grant_id, "account": "alice"})
    real = await _craft(m, colleague_id, "instance.update", {
        "instance": web_id, "desired": "stopped", "grant": grant_id, "account": "alice"})
    altered = real.replace(b"stopped", b"running")
    assert decode(altered).author == colleague_id.public_key
    node_revoke = await _craft(m, m.identity, "grant.revoke", {"grant": grant_id})
    for target in (f, h):
        for raw, reason in ((forged_grant, "unauthorized"), (node_use, "invalid"),
                            (altered, None), (node_revoke, "unauthorized")):
            pushed = await _push(m, target, [raw])
            assert pushed.refused == 1 and pushed.accepted == 0, pushed
            if reason is not None:
                assert pushed.refusals[0].reason == reason, pushed

    before_revocation = await _tip(m)
    revoked = ok("revoke", grant_id[:12], *at[f], *as_alice)
    assert revoked["status"] == "accepted"
    await converged(cluster)
    assert ok("grants", *at[h], *as_alice)["items"][0]["revoked"] is True
    # a key whose grants are all revoked no longer reaches the tenant routes (401, one line)
    assert "unknown key" in one_line_failure("tenant", "start", "web", "--as", "alice",
                                             *at[h], *as_colleague)
    after = await _craft(m, colleague_id, "instance.update", {
        "instance": web_id, "desired": "running", "grant": grant_id, "account": "alice"})
    for target in (f, h):
        pushed = await _push(m, target, [after])
        assert pushed.refused == 1 and "revoked" in pushed.refusals[0].message, pushed
    # the same use backdated: parents and time from before the revocation, which it withholds.
    # Accepted (nothing in its past refuses it) and void: web stays stopped everywhere.
    backdated = await _craft(m, colleague_id, "instance.update", {
        "instance": web_id, "desired": "running", "grant": grant_id, "account": "alice"},
        at=before_revocation)
    for target in (f, h):  # (h may have it from f already)
        pushed = await _push(m, target, [backdated])
        assert pushed.refused == 0 and pushed.accepted + pushed.duplicate == 1, pushed
    await converged(cluster)
    for n in cluster:
        assert (await _web(n))["desired"] == "stopped"
        grants = (await call(n, sr.state_view, collection="grants")).items
        assert [(g["key"], g["revoked"]) for g in grants] == [(grant_id, True)]
    async with NodeClient.tcp(f"127.0.0.1:{f.port}", colleague_id, timeout_s=20) as client:
        with pytest.raises(ApiError) as caught:
            await client.call(gr.tenant_grants)
        assert caught.value.status == 401
