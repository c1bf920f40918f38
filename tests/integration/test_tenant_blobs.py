"""Tenant blob uploads through the signed TCP API of a real `formation node` process: a tenant
key on this host uploads a kernel and an initrd with `formation tenant image-add` (chunks,
verified by the node), and the image's blobs are then in the node's image store under their
digests. Hostile callers (a member node, another account, a removed account's key, chunks out of
order or past the size, a wrong SHA-256, over the account's budget) are refused with one line
and nothing is stored."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time

import pytest
from statecluster import (
    NodeProc,
    call,
    one_node,  # noqa: F401  (the `node` fixture)
)
from waiting import until

from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api import tenant_blob_models as tb
from formation.api import tenant_blob_routes as tbr
from formation.api.client import ApiError, NodeClient
from formation.identity import NodeIdentity
from formation.node.state.image_manifest import image_digest
from formation.node.vmm.images.blob import hash_file
from formation.node.vmm.images.fetch import Fetcher, Peer
from formation.node.vmm.images.store import ImageStore
from formation.tenant_client import relay

ALICE, BOB, MEMBER, CAROL, DAVE, EVE = (NodeIdentity.from_seed(bytes([i]) * 32)
                                        for i in (90, 91, 92, 93, 94, 96))


def blobs(node: NodeProc) -> set[str]:
    where = node.dir / "data" / "images" / "blobs"
    return set(os.listdir(where)) if where.exists() else set()


def formation(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "formation", *args], capture_output=True,
                          text=True, timeout=120)


async def test_image_add_uploads_the_files_the_node_lacks(node, short_tmp) -> None:
    await call(node, sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    key = short_tmp / "alice.key"
    assert formation("key", "create", str(key)).returncode == 0
    node.cli_json("account", "create", "alice", "--key", f"{key}.pub")
    kernel, initrd, disk = short_tmp / "vmlinux", short_tmp / "initrd.img", short_tmp / "d.img"
    kernel.write_bytes(b"a kernel " * 100)
    initrd.write_bytes(os.urandom(1_300_000))  # three chunks
    disk.write_bytes(os.urandom(9 << 20))  # big enough to report progress
    where = ["--node", f"127.0.0.1:{node.port}", "--key", str(key)]
    assert blobs(node) == set()

    added = formation("tenant", "image-add", "web", "--kernel", str(kernel), "--initrd",
                      str(initrd), "--disk", str(disk), *where, "--json")
    assert added.returncode == 0, added.stderr
    assert "uploading disk: 9/9 MiB" in added.stderr and "uploading initrd" not in added.stderr
    parts = {p: {"digest": hashlib.sha256(f.read_bytes()).hexdigest(),
                 "size": f.stat().st_size}
             for p, f in (("kernel", kernel), ("initrd", initrd), ("disk", disk))}
    assert json.loads(added.stdout)["digest"] == image_digest(parts, "console=ttyS0")
    assert blobs(node) == {p["digest"] for p in parts.values()}
    for p in parts.values():  # whole and verified under its digest
        stored = node.dir / "data" / "images" / "blobs" / p["digest"]
        assert hash_file(stored) == (p["digest"], p["size"])
    listed = json.loads(formation("tenant", "images", *where, "--json").stdout)["items"]
    assert [(i["name"], i["account"]) for i in listed] == [("web", "alice")]

    # another member's image fetch (the code its reconciler runs) gets them from this node
    await call(node, sr.state_append, sm.AppendRequest(
        kind="node.admit", payload={"node": MEMBER.public_key_hex, "roles": ["member"]}))
    elsewhere = ImageStore(short_tmp / "member-images")
    elsewhere.open()
    image = {"digest": image_digest(parts, "console=ttyS0"), "name": "web", "parts": parts,
             "cmdline": "console=ttyS0", "size": sum(p["size"] for p in parts.values())}
    paths = await Fetcher(elsewhere, MEMBER).ensure(
        image, [Peer(node.identity.public_key_hex, f"127.0.0.1:{node.port}")])
    assert paths["initrd"].read_bytes() == initrd.read_bytes()

    # the same files under another name: nothing to upload (the node holds both)
    again = formation("tenant", "image-add", "web2", "--kernel", str(kernel), "--initrd",
                      str(initrd), "--disk", str(disk), "--cmdline", "console=hvc0", *where,
                      "--json")
    assert again.returncode == 0, again.stderr
    assert "uploading" not in again.stderr
    assert blobs(node) == {p["digest"] for p in parts.values()}


def tcp(node: NodeProc, who: NodeIdentity) -> NodeClient:
    return NodeClient.tcp(f"127.0.0.1:{node.port}", who, timeout_s=20)


async def _refused(coro) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await coro
    assert "\n" not in caught.value.body.message
    return caught.value


def chunk(offset: int, data: bytes) -> tb.TenantBlobChunk:
    return tb.TenantBlobChunk(offset=offset, data=base64.b64encode(data).decode())


async def test_hostile_uploads_are_refused_and_store_nothing(node) -> None:
    await call(node, sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    for kind, payload in (
            ("node.admit", {"node": MEMBER.public_key_hex, "roles": ["member"]}),
            ("account.set", {"name": "alice", "keys": [ALICE.public_key_hex], "roles": ["user"]}),
            ("account.set", {"name": "bob", "keys": [BOB.public_key_hex], "roles": ["user"]}),
            ("account.set", {"name": "carol", "keys": [CAROL.public_key_hex], "roles": ["user"],
                             "quotas": {"disk_gb": 1}}),
            ("account.set", {"name": "dave", "keys": [DAVE.public_key_hex], "roles": ["user"]}),
            ("account.remove", {"name": "dave"})):
        await call(node, sr.state_append, sm.AppendRequest(kind=kind, payload=payload))
    data = os.urandom(1000)
    digest = hashlib.sha256(data).hexdigest()
    start = tb.TenantBlobStart(size=len(data), sha256=digest)

    async with tcp(node, MEMBER) as member:  # a node key is no account's
        refused = await _refused(member.call(tbr.tenant_blob_start, start))
        assert refused.status == 403, refused.body
    async with tcp(node, DAVE) as dave:  # a removed account's key
        refused = await _refused(dave.call(tbr.tenant_blob_start, start))
        assert refused.status in (401, 403), refused.body
    async with tcp(node, CAROL) as carol:  # 2 GiB declared past a 1 GB disk quota
        over = await _refused(carol.call(tbr.tenant_blob_start, tb.TenantBlobStart(
            size=2 * 1024**3, sha256=digest)))
        assert over.status == 413 and over.body.message.startswith("size:"), over.body

    async with tcp(node, ALICE) as alice:  # a key alice granted something is no account's
        granted = await relay(alice, ALICE, "grant.set", {
            "account": "alice", "grantee": EVE.public_key_hex, "actions": ["instance.create"],
            "prefix": "ci-", "until_ms": int(time.time() * 1000) + 3_600_000})
        assert granted.status == "accepted"
    async with tcp(node, EVE) as eve:
        grantee = await _refused(eve.call(tbr.tenant_blob_start, start))
        assert grantee.status == 403 and "not a key of any account" in grantee.body.message

    async with tcp(node, ALICE) as alice, tcp(node, BOB) as bob:
        opened = await alice.call(tbr.tenant_blob_start, start)
        assert opened.id and not opened.stored
        # another account can neither add to nor finish nor cancel alice's upload
        for attempt in (bob.call(tbr.tenant_blob_chunk, chunk(0, data), upload=opened.id),
                        bob.call(tbr.tenant_blob_cancel, upload=opened.id)):
            theirs = await _refused(attempt)
            assert theirs.status == 404 and "no open upload" in theirs.body.message
        async with tcp(node, MEMBER) as member:
            nodes = await _refused(member.call(tbr.tenant_blob_chunk, chunk(0, data),
                                               upload=opened.id))
            assert nodes.status == 403, nodes.body
        late = await _refused(alice.call(tbr.tenant_blob_chunk, chunk(10, data[10:]),
                                         upload=opened.id))
        assert late.status == 409 and late.body.message.startswith("offset:"), late.body
        past = await _refused(alice.call(tbr.tenant_blob_chunk, chunk(0, data + b"x"),
                                         upload=opened.id))
        assert past.status == 413, past.body
        # the declared SHA-256 is not what arrives: dropped at the last chunk
        wrong = await alice.call(tbr.tenant_blob_start, tb.TenantBlobStart(
            size=len(data), sha256="0" * 64))
        bad = await _refused(alice.call(tbr.tenant_blob_chunk, chunk(0, data),
                                        upload=wrong.id))
        assert bad.status == 400 and bad.body.message.startswith("sha256:"), bad.body
        gone = await _refused(alice.call(tbr.tenant_blob_chunk, chunk(0, data),
                                         upload=wrong.id))
        assert gone.status == 404
        assert blobs(node) == set()
        assert not (await alice.call(tbr.tenant_blob_held, digest=digest)).held

        # and the honest upload, after all that, completes
        half = len(data) // 2
        assert (await alice.call(tbr.tenant_blob_chunk, chunk(0, data[:half]),
                                 upload=opened.id)).received == half
        done = await alice.call(tbr.tenant_blob_chunk, chunk(half, data[half:]),
                                upload=opened.id)
        assert done.stored
        assert blobs(node) == {digest}
        assert (await bob.call(tbr.tenant_blob_held, digest=digest)).held
        held = await bob.call(tbr.tenant_blob_start, start)  # nothing to send: it is here
        assert held.stored and held.id is None

        # bob's account is removed in the middle of an upload: his next chunk is refused, the
        # upload and his stored blob that no image names are gone at once
        mine = os.urandom(10)
        whole = await bob.call(tbr.tenant_blob_start, tb.TenantBlobStart(
            size=len(mine), sha256=hashlib.sha256(mine).hexdigest()))
        assert (await bob.call(tbr.tenant_blob_chunk, chunk(0, mine), upload=whole.id)).stored
        assert len(blobs(node)) == 2
        other = os.urandom(1000)
        midway = await bob.call(tbr.tenant_blob_start, tb.TenantBlobStart(
            size=len(other), sha256=hashlib.sha256(other).hexdigest()))
        await bob.call(tbr.tenant_blob_chunk, chunk(0, other[:500]), upload=midway.id)
        await call(node, sr.state_append, sm.AppendRequest(kind="account.remove",
                                                           payload={"name": "bob"}))
        removed = await _refused(bob.call(tbr.tenant_blob_chunk, chunk(500, other[500:]),
                                          upload=midway.id))
        assert removed.status in (401, 403), removed.body
        tmp = node.dir / "data" / "images" / "tmp"
        await until(lambda: blobs(node) == {digest} and not any(tmp.iterdir()),
                    what="bob's upload and unnamed blob to go")
