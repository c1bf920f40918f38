"""Build contexts over the 1 MiB request limit, uploaded in chunks (formation/node/pack/
uploads.py) by a member over TCP, with a FAKE builder (fake_builder.py) on a real node: a
3 MiB context builds, and a hostile member is bounded: an oversized upload, a chunk past the
declared size or out of order, a truncated or corrupted upload named by a build, another
key's upload, a flood of open uploads, an idle upload (dropped)."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest
from waiting import until

from formation.api import pack_models as pm
from formation.api import pack_routes
from formation.api.client import ApiError, NodeClient
from formation.commands.pack_build import upload_context
from formation.identity import NodeIdentity
from formation.node.pack import uploads
from formation.node.pack.component import PackComponent
from formation.node.pack.context import pack_context
from formation.node.pack.uploads import MAX_OPEN_PER_KEY, Uploads
from formation.node.service import NodeService
from tests.integration.pack.fake_builder import FakeBuilder, digest
from tests.integration.pack.pack_node import pack_node, wait_build, write_context

BIG = "NAME big\nCOPY blob.bin /srv/blob.bin\nRUN echo built\n"


def uploads_dir(service: NodeService) -> list[Path]:
    return list((service.settings.data_dir / "pack-uploads").iterdir())


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def refused(call, status: int, needle: str) -> None:
    with pytest.raises(ApiError) as caught:
        await call
    assert caught.value.status == status, caught.value.body.message
    assert needle in caught.value.body.message


@pytest.fixture
async def lab(short_tmp: Path):
    other = NodeIdentity.generate()
    fake = FakeBuilder()
    async with pack_node(short_tmp, fake.toolchain(),
                         trusted_keys=[other.public_key_hex]) as service:
        assert service.identity is not None
        address = service.listen_addresses()[1].removeprefix("tcp:")
        async with NodeClient.tcp(address, service.identity, timeout_s=30) as member, \
                NodeClient.tcp(address, other, timeout_s=30) as stranger:
            yield service, member, stranger


async def test_fake_builder_a_context_over_a_mib_is_uploaded_in_chunks(lab, short_tmp) -> None:
    service, member, _ = lab
    blob = os.urandom(3 * 1024 * 1024)  # incompressible: a 3 MiB tar, 6 chunks
    context = write_context(short_tmp / "big", BIG)
    (context / "blob.bin").write_bytes(blob)
    packed = pack_context(context)
    assert len(packed) > 3 * 1024 * 1024
    upload = await upload_context(member, packed)
    started = await member.call(pack_routes.pack_build_start,
                                pm.PackBuildStart(upload=upload, name="big"))
    done = await wait_build(member, started.id)
    assert done.state == "done", done.error
    from formation.pack.formfile import load_formfile

    spec, _ = load_formfile(context)
    assert done.context_digest == digest(spec, context)  # the node built the same bytes
    assert uploads_dir(service) == []
    # consumed: a second build cannot name it again
    await refused(member.call(pack_routes.pack_build_start, pm.PackBuildStart(upload=upload)),
                  404, "no open upload")


async def test_fake_builder_hostile_uploads_are_bounded(lab, short_tmp, monkeypatch) -> None:
    service, member, stranger = lab
    tar = pack_context(write_context(short_tmp / "small", "NAME small\n"))
    sha = hashlib.sha256(tar).hexdigest()
    start = pack_routes.pack_upload_start
    chunk = pack_routes.pack_upload_chunk
    await refused(member.call(start, pm.PackUploadStart(size=pm.MAX_UPLOAD_BYTES + 1,
                                                        sha256=sha)), 413, "at most 256 MiB")
    up = await member.call(start, pm.PackUploadStart(size=len(tar), sha256=sha))
    # out of order, past the declared size, not base64
    await refused(member.call(chunk, pm.PackUploadChunk(offset=5, data=b64(tar)), upload=up.id),
                  409, "expected 0")
    await refused(member.call(chunk, pm.PackUploadChunk(offset=0, data=b64(tar + b"x")),
                              upload=up.id), 413, "past the declared size")
    await refused(member.call(chunk, pm.PackUploadChunk(offset=0, data="%%%"), upload=up.id),
                  400, "base64")
    # truncated: a build naming it before it is complete is refused, the upload stays open
    half = await member.call(chunk, pm.PackUploadChunk(offset=0, data=b64(tar[:10])),
                             upload=up.id)
    assert half.received == 10
    await refused(member.call(pack_routes.pack_build_start, pm.PackBuildStart(upload=up.id)),
                  400, f"10 of {len(tar)} bytes received")
    # another key sees no such upload: it can neither add to it, build it nor cancel it
    await refused(stranger.call(chunk, pm.PackUploadChunk(offset=10, data=b64(tar[10:])),
                                upload=up.id), 404, "no open upload")
    await refused(stranger.call(pack_routes.pack_build_start, pm.PackBuildStart(upload=up.id)),
                  404, "no open upload")
    await refused(stranger.call(pack_routes.pack_upload_cancel, upload=up.id), 404,
                  "no open upload")
    # corrupted: the bytes do not hash to the declared SHA-256 -> refused and dropped
    bad = await member.call(start, pm.PackUploadStart(size=len(tar), sha256="0" * 64))
    await member.call(chunk, pm.PackUploadChunk(offset=0, data=b64(tar)), upload=bad.id)
    await refused(member.call(pack_routes.pack_build_start, pm.PackBuildStart(upload=bad.id)),
                  400, "declared SHA-256")
    assert len(uploads_dir(service)) == 1  # only `up` is left on disk
    # a flood: one key holds at most MAX_OPEN_PER_KEY open uploads; cancelling frees one
    held = [up] + [await member.call(start, pm.PackUploadStart(size=len(tar), sha256=sha))
                   for _ in range(MAX_OPEN_PER_KEY - 1)]
    await refused(member.call(start, pm.PackUploadStart(size=len(tar), sha256=sha)), 429,
                  "uploads open")
    # the node-wide budget (declared sizes are reserved): another key asking for more than
    # is left is refused before it sends a byte
    monkeypatch.setattr(uploads, "MAX_TOTAL_BYTES", pm.MAX_UPLOAD_BYTES)
    await refused(stranger.call(start, pm.PackUploadStart(size=pm.MAX_UPLOAD_BYTES,
                                                          sha256=sha)), 503, "taken")
    await member.call(pack_routes.pack_upload_cancel, upload=held[-1].id)
    again = await member.call(start, pm.PackUploadStart(size=len(tar), sha256=sha))
    assert len(uploads_dir(service)) == MAX_OPEN_PER_KEY
    # the truncated one completes and builds
    await member.call(chunk, pm.PackUploadChunk(offset=10, data=b64(tar[10:])), upload=up.id)
    started = await member.call(pack_routes.pack_build_start, pm.PackBuildStart(upload=up.id))
    assert (await wait_build(member, started.id)).state == "done"
    assert [p.name for p in uploads_dir(service)] == [again.id]


async def test_fake_builder_idle_uploads_are_dropped(short_tmp, monkeypatch) -> None:
    monkeypatch.setattr(Uploads, "idle_s", 0.2)
    async with pack_node(short_tmp, FakeBuilder().toolchain()) as service:
        part = service.parts.pack if service.parts else None
        assert isinstance(part, PackComponent)
        async with NodeClient.unix(service.settings.api.socket, timeout_s=30) as local:
            up = await local.call(pack_routes.pack_upload_start,
                                  pm.PackUploadStart(size=100, sha256="0" * 64))
            assert uploads_dir(service) != []

            async def dropped() -> bool:
                await part.uploads.expire()  # what every upload call does first
                return uploads_dir(service) == []

            await until(dropped, 10, what="the idle upload dropped")
            await refused(local.call(pack_routes.pack_upload_chunk,
                                     pm.PackUploadChunk(offset=0, data=b64(b"x")),
                                     upload=up.id), 404, "no open upload")
