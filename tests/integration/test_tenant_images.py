"""Images owned by accounts through the signed TCP API of a real `formation node` process: a
tenant key adds an image in its own account's name and lists it; another account neither sees
it, nor boots it, nor removes it; a member node pushing an image.add in the tenant's name is
refused. Each refusal is one line and writes nothing."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time

import pytest
from statecluster import (
    NodeProc,
    call,
    one_node,  # noqa: F401  (the `node` fixture)
)

from formation.api import account_routes as ar
from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api import vm_routes as vr
from formation.api.client import ApiError, NodeClient
from formation.identity import NodeIdentity
from formation.node.state import wire
from formation.node.state.image_manifest import image_digest
from formation.node.state.op import build_body, sign_body
from formation.tenant_client import relay

ALICE, BOB, MEMBER, CAROL = (NodeIdentity.from_seed(bytes([i]) * 32)
                             for i in (80, 81, 82, 83))


def image(name: str, kernel: str) -> dict:
    parts = {"kernel": {"digest": kernel * 32, "size": 1}}
    return {"digest": image_digest(parts, ""), "name": name, "size": 1, "parts": parts,
            "cmdline": ""}


def tcp(node: NodeProc, who: NodeIdentity) -> NodeClient:
    return NodeClient.tcp(f"127.0.0.1:{node.port}", who, timeout_s=20)


async def _images(node: NodeProc) -> list[dict]:
    return (await call(node, sr.state_view, collection="images")).items


async def _refused(coro) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await coro
    assert "\n" not in caught.value.body.message
    return caught.value


async def _craft(node: NodeProc, who: NodeIdentity, kind: str, payload: dict) -> bytes:
    """`who`'s first op, signed by hand on `node`'s heads, checked by nobody."""
    heads = (await call(node, sr.state_heads)).heads
    network = bytes.fromhex((await call(node, sr.state_status)).network)
    log = (await call(node, sr.state_log, query=sm.LogQuery(after=0, limit=1000))).ops
    hlc = max(tuple(op.hlc) for op in log)
    return sign_body(build_body(network, who.public_key, 1, None,
                                [bytes.fromhex(x) for x in heads], (hlc[0], hlc[1] + 1),
                                kind, payload), who.sign)


async def test_an_accounts_image_is_its_own(node) -> None:
    await call(node, sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    for kind, payload in (
            ("node.admit", {"node": MEMBER.public_key_hex, "roles": ["member"]}),
            ("account.set", {"name": "alice", "keys": [ALICE.public_key_hex], "roles": ["user"]}),
            ("account.set", {"name": "bob", "keys": [BOB.public_key_hex], "roles": ["user"]})):
        await call(node, sr.state_append, sm.AppendRequest(kind=kind, payload=payload))
    web = image("web", "aa")
    async with tcp(node, ALICE) as alice:
        added = await relay(alice, ALICE, "image.add", {**web, "account": "alice"})
        assert added.status == "accepted"
        [mine] = (await alice.call(ar.tenant_images)).items
        assert mine["account"] == "alice" and mine["key"] == web["digest"]
        spec = {"image": web["digest"], "vcpus": 1, "memory_mb": 512, "disk_gb": 5}
        booted = await relay(alice, ALICE, "instance.create",
                             {"name": "w", "spec": spec, "account": "alice"})
        assert booted.status == "accepted"
        granted = await relay(alice, ALICE, "grant.set", {
            "account": "alice", "grantee": CAROL.public_key_hex, "actions": ["instance.create"],
            "prefix": "ci-", "until_ms": int(time.time() * 1000) + 3_600_000})
    async with tcp(node, CAROL) as carol:  # a grantee boots its granting account's image
        used = await relay(carol, CAROL, "instance.create", {
            "name": "ci-1", "spec": spec, "account": "alice", "grant": granted.id})
        assert used.status == "accepted"
    before = await _images(node)

    async with tcp(node, BOB) as bob:
        assert (await bob.call(ar.tenant_images)).items == []
        boot = await _refused(relay(bob, BOB, "instance.create",
                                    {"name": "b", "spec": spec, "account": "bob"}))
        assert boot.status == 403 and boot.body.message.startswith("spec.image"), boot.body
        gone = await _refused(relay(bob, BOB, "image.remove", {"image": added.id}))
        assert gone.status == 403 and "account 'alice'" in gone.body.message, gone.body
        theirs = await _refused(relay(bob, BOB, "image.add", {**image("x", "bb"),
                                                             "account": "alice"}))
        assert theirs.status == 403 and "payload.account" in theirs.body.message
        shadow = await _refused(relay(bob, BOB, "image.add", {**image("web", "bb"),
                                                             "account": "bob"}))
        assert shadow.status == 409 and shadow.body.message.startswith("name:"), shadow.body

    hostile = await _craft(node, MEMBER, "image.add", {**image("evil", "cc"),
                                                       "account": "alice"})
    async with tcp(node, MEMBER) as member:
        pushed = await member.call(sr.state_sync_push, sm.OpBatch(ops=wire.pack([hostile]),
                                                                  count=1))
    assert pushed.refused == 1 and pushed.refusals[0].reason == "unauthorized"
    assert await _images(node) == before  # nothing written by any refusal

    async with tcp(node, ALICE) as alice:
        assert (await relay(alice, ALICE, "image.remove", {"image": added.id})).status \
            == "accepted"
        assert (await alice.call(ar.tenant_images)).items == []


def formation(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "formation", *args], capture_output=True,
                          text=True, timeout=60)


async def test_the_tenant_image_commands(node, short_tmp) -> None:
    await call(node, sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    key = short_tmp / "alice.key"
    assert formation("key", "create", str(key)).returncode == 0
    node.cli_json("account", "create", "alice", "--key", f"{key}.pub")
    kernel = short_tmp / "vmlinux"
    kernel.write_bytes(b"a kernel")
    where = ["--node", f"127.0.0.1:{node.port}", "--key", str(key)]
    added = formation("tenant", "image-add", "web", "--kernel", str(kernel), *where, "--json")
    assert added.returncode == 0, added.stderr
    digest = json.loads(added.stdout)["digest"]
    parts = {"kernel": {"digest": hashlib.sha256(b"a kernel").hexdigest(), "size": 8}}
    assert digest == image_digest(parts, "console=ttyS0")  # what the node's import would make
    listed = formation("tenant", "images", *where, "--json")
    assert [(i["name"], i["key"], i["account"]) for i in json.loads(listed.stdout)["items"]] \
        == [("web", digest, "alice")]
    booted = formation("tenant", "create", "w", "--image", "web", *where, "--json")
    assert booted.returncode == 0, booted.stderr  # by its name: one of the account's images
    assert json.loads(booted.stdout)["status"] == "accepted"
    missing = formation("tenant", "image-rm", "nope", *where)
    assert missing.returncode == 1 and "no such image" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    assert formation("tenant", "image-rm", "web", *where).returncode == 0
    assert json.loads(formation("tenant", "images", *where, "--json").stdout)["items"] == []


async def test_removing_a_nodes_image_leaves_an_accounts_add_of_the_same_bytes(node) -> None:
    await call(node, sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    await call(node, sr.state_append, sm.AppendRequest(kind="account.set", payload={
        "name": "alice", "keys": [ALICE.public_key_hex], "roles": ["user"]}))
    same = image("web", "dd")
    await call(node, sr.state_append, sm.AppendRequest(kind="image.add", payload=same))
    async with tcp(node, ALICE) as alice:
        mine = await relay(alice, ALICE, "image.add", {**same, "name": "mine",
                                                       "account": "alice"})
        assert mine.status == "accepted"
    # the operator removes the image by its bytes (the catalog shows one name per digest)
    await call(node, vr.image_delete, image=same["digest"])
    left = await _images(node)
    assert [(i["name"], i.get("account")) for i in left] == [("mine", "alice")]
