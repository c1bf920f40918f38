"""The images part's sweep of uploaded blobs, in a real node service: a blob an image.add names
becomes that image's (its manifest saved, so removing the image frees it like any other); one
that nothing names is deleted after the hour."""

from __future__ import annotations

import hashlib

from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api import vm_routes as vr
from formation.node.service import NodeService
from formation.node.state.image_manifest import image_digest
from formation.node.vmm.images import tenant_blobs as tbm
from formation.node.vmm.images.component import ImagesComponent
from tests.unit.node.vmm.images.test_tenant_blob_store import Clock, upload


async def test_named_blobs_join_their_image_and_the_rest_go(node: NodeService, client) -> None:
    [part] = [c for c in node.components if isinstance(c, ImagesComponent)]
    clock = Clock()
    blobs = part.require_blobs()
    blobs.wall = clock
    store = part.require_store()
    await client.call(sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    await client.call(sr.state_append, sm.AppendRequest(kind="account.set", payload={
        "name": "alice", "keys": ["ab" * 32], "roles": ["user"]}))
    kernel = await upload(blobs, "k1", "alice", b"a kernel")
    lonely = await upload(blobs, "k1", "alice", b"nobody names me")
    parts = {"kernel": {"digest": kernel, "size": 8}}
    web = {"digest": image_digest(parts, ""), "name": "web", "size": 8, "parts": parts,
           "cmdline": ""}
    await client.call(sr.state_append, sm.AppendRequest(kind="image.add", payload=web))

    assert "tenant uploads: 0 open, 2 " in part.health()[0].detail  # what an operator sees
    assert await part.sweep_blobs() == []
    assert set(blobs.waiting) == {lonely}  # the kernel is the image's now
    clock.now += tbm.UNREFERENCED_S + 1
    assert await part.sweep_blobs() == [lonely]
    assert not store.has_blob(lonely) and store.has_blob(kernel)

    await client.call(vr.image_delete, image="web")  # freed with its image, as any image's
    assert not store.has_blob(kernel)
    assert hashlib.sha256(b"a kernel").hexdigest() == kernel
