"""The pack part's plumbing with a FAKE builder (fake_builder.py: it builds nothing, it reports
steps and hands back files), against a real node: the API starts a build from a path (local
callers) or an uploaded tar (remote callers), progress goes out on the event stream, one build
runs at a time with the others queued, the result is imported into the image store with an
image.add recording the Formfile and this node as builder, a failed step names its line and
leaves nothing behind, a bad Formfile is refused at once, and hostile requests are refused."""

from __future__ import annotations

import asyncio
import base64
import io
import tarfile
from pathlib import Path

import pytest
from waiting import until

from formation.api import pack_models as pm
from formation.api import pack_routes, vm_routes
from formation.api.client import ApiError, NodeClient
from formation.node.pack.context import pack_context
from formation.node.service import NodeService
from formation.node.state.image_formfile import source_text
from tests.integration.pack.fake_builder import FakeBuilder
from tests.integration.pack.pack_node import (
    image_add_payloads,
    kinds,
    pack_events,
    pack_node,
    wait_build,
    write_context,
)

WEB = "NAME web\nVCPU 2\nMEM 1024\nCOPY app.sh /srv/app.sh\nRUN echo built\nEXPOSE 8080/tcp\n"
BROKEN = "NAME broken\nRUN echo one\nRUN false\nRUN echo never\n"


def client_of(service: NodeService) -> NodeClient:
    return NodeClient.unix(service.settings.api.socket, timeout_s=30)


def blobs(service: NodeService) -> set[str]:
    root = service.settings.data_dir / "images" / "blobs"
    return {p.name for p in root.iterdir()} if root.exists() else set()


def scratch(service: NodeService) -> list[Path]:
    return list((service.settings.data_dir / "pack-jobs").iterdir())


@pytest.fixture
def fake() -> FakeBuilder:
    return FakeBuilder()


@pytest.fixture
async def node(short_tmp: Path, fake: FakeBuilder):
    async with pack_node(short_tmp, fake.toolchain()) as service:
        yield service


async def test_fake_builder_build_events_image_store_and_image_add(node, short_tmp) -> None:
    context = write_context(short_tmp / "web", WEB, {"app.sh": "echo app\n"})
    async with client_of(node) as client:
        started = await client.call(pack_routes.pack_build_start,
                                    pm.PackBuildStart(context=str(context)))
        assert started.name == "web" and started.state in ("queued", "running", "done")
        assert started.resources == pm.PackResources(vcpus=2, memory_mb=1024, disk_gb=None,
                                                     ports=["8080/tcp"])
        done = await wait_build(client, started.id)
        assert done.state == "done" and not done.reused, done
        assert [s.step for s in done.steps] == [0, 1, 2, 4]
        assert done.steps[1].line == 4 and done.steps[2].label == "RUN echo built"
        assert done.progress is not None and done.progress.fraction == 1.0

        seen = kinds(pack_events(node, started.id))
        assert seen[0] == "queued" and seen[1] == "started" and seen[-1] == "done"
        assert "progress" in seen and "failed" not in seen
        progress = next(e for e in pack_events(node, started.id) if e.kind == "progress")
        assert set(progress.data) >= {"step", "total", "line", "label", "fraction", "cached",
                                      "message"}

        [image] = (await client.call(vm_routes.image_list)).images
        assert image.name == "web" and image.digest == done.image and image.local
        assert blobs(node) == {p.digest for p in image.parts.values()}
        [payload] = await image_add_payloads(client)
        me = node.identity.public_key_hex if node.identity else ""
        assert payload["builder"] == me == payload["author"]
        assert payload["formfile"]["name"] == "web"
        assert payload["formfile"]["digest"] == done.context_digest
        assert source_text(payload["formfile"]) == WEB
        assert scratch(node) == []  # the build's scratch is gone

        # the same Formfile and context again: the image is reused, nothing is built
        again = await wait_build(client, (await client.call(
            pack_routes.pack_build_start, pm.PackBuildStart(context=str(context)))).id)
        assert again.state == "done" and again.reused and again.image == done.image
        listed = await client.call(pack_routes.pack_build_list)
        assert [b.id for b in listed.builds] == [again.id, started.id]

        # an edit rebuilds, and the name moves to the new image (this node added the old one)
        write_context(context, WEB + "RUN echo edited\n")
        edited = await wait_build(client, (await client.call(
            pack_routes.pack_build_start, pm.PackBuildStart(context=str(context)))).id)
        assert edited.state == "done" and not edited.reused and edited.image != done.image
        [image] = (await client.call(vm_routes.image_list)).images
        assert image.name == "web" and image.digest == edited.image
        assert blobs(node) == {p.digest for p in image.parts.values()}  # the old ones freed


async def test_fake_builder_one_build_at_a_time_the_next_queued(node, fake, short_tmp) -> None:
    fake.gate.clear()
    first = write_context(short_tmp / "a", "NAME first\nRUN echo a\n")
    second = write_context(short_tmp / "b", "NAME second\nRUN echo b\n")
    async with client_of(node) as client:
        a = await client.call(pack_routes.pack_build_start, pm.PackBuildStart(context=str(first)))
        await until(lambda: fake.started == ["first"], 10, what="the first build running")
        b = await client.call(pack_routes.pack_build_start,
                              pm.PackBuildStart(context=str(second)))
        assert b.state == "queued" and b.position == 1
        shown = await client.call(pack_routes.pack_build_show, build=a.id)
        assert shown.state == "running" and shown.progress is not None
        assert fake.started == ["first"]  # the second waits for the first
        fake.gate.set()
        assert (await wait_build(client, a.id)).state == "done"
        assert (await wait_build(client, b.id)).state == "done"
        assert fake.started == ["first", "second"]
        assert kinds(pack_events(node, b.id))[:2] == ["queued", "started"]
        assert pack_events(node, b.id)[0].data["position"] == 1


async def test_fake_builder_failed_step_names_its_line_leaves_nothing(node, fake,
                                                                       short_tmp) -> None:
    context = write_context(short_tmp / "broken", BROKEN)
    async with client_of(node) as client:
        before = blobs(node)
        started = await client.call(pack_routes.pack_build_start,
                                    pm.PackBuildStart(context=str(context)))
        failed = await wait_build(client, started.id)
        assert failed.state == "failed" and failed.error_line == 3
        assert failed.error.startswith("Formfile line 3 (RUN false): exited with status 1")
        assert "\n" not in failed.error and failed.image is None
        last = pack_events(node, started.id)[-1]
        assert last.kind == "failed" and last.data["line"] == 3
        assert last.data["reason"] == failed.error
        assert blobs(node) == before  # nothing of it in the image store
        assert (await client.call(vm_routes.image_list)).images == []
        assert scratch(node) == [] and not fake.outs[-1].exists()


async def test_fake_builder_cancel_a_running_build(node, fake, short_tmp) -> None:
    fake.gate.clear()
    context = write_context(short_tmp / "slow", "NAME slow\nRUN echo a\n")
    async with client_of(node) as client:
        started = await client.call(pack_routes.pack_build_start,
                                    pm.PackBuildStart(context=str(context)))
        await until(lambda: fake.started == ["slow"], 10, what="the build running")
        cancelled = await client.call(pack_routes.pack_build_cancel, build=started.id)
        assert cancelled.state == "cancelled" and cancelled.error == "cancelled"
        assert pack_events(node, started.id)[-1].data["state"] == "cancelled"
        assert scratch(node) == [] and blobs(node) == set()


async def test_fake_builder_a_bad_formfile_is_refused_at_once(node, fake, short_tmp) -> None:
    context = write_context(short_tmp / "bad", "NAME web\nBOGUS x\nVCPU 0\n")
    async with client_of(node) as client:
        with pytest.raises(ApiError) as refused:
            await client.call(pack_routes.pack_build_start,
                              pm.PackBuildStart(context=str(context)))
        assert refused.value.status == 400
        assert refused.value.body.message.startswith("Formfile:2:1: unknown directive 'BOGUS'")
        assert "and 1 more problems" in refused.value.body.message
        assert [f.field for f in refused.value.body.fields] == ["Formfile:2:1", "Formfile:3:6"]
        for bad, needle in [("relative/dir", "absolute path"),
                            (str(short_tmp / "nowhere"), "does not exist"),
                            (str(short_tmp), "holds no Formfile")]:
            with pytest.raises(ApiError) as refused:
                await client.call(pack_routes.pack_build_start, pm.PackBuildStart(context=bad))
            assert refused.value.status == 400 and needle in refused.value.body.message
        shouting = write_context(short_tmp / "caps", "NAME Web_App\n")
        with pytest.raises(ApiError) as refused:
            await client.call(pack_routes.pack_build_start,
                              pm.PackBuildStart(context=str(shouting)))
        assert refused.value.body.message.startswith("Formfile:1:6: NAME: expected")
    assert fake.started == [] and scratch(node) == []


def tar_of(entries: list[tuple[tarfile.TarInfo, bytes]]) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in entries:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return base64.b64encode(buffer.getvalue()).decode()


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


async def test_fake_builder_remote_caller_uploads_the_context(node, short_tmp) -> None:
    """Over TCP (signed by a member's key) the context is uploaded; a path on the node and a
    hostile tar are refused, and a refused upload leaves no scratch behind."""
    assert node.identity is not None
    context = write_context(short_tmp / "up", WEB, {"app.sh": "echo app\n"})
    async with NodeClient.tcp(node.listen_addresses()[1].removeprefix("tcp:"), node.identity,
                              timeout_s=30) as remote:
        with pytest.raises(ApiError) as refused:
            await remote.call(pack_routes.pack_build_start,
                              pm.PackBuildStart(context=str(context)))
        assert refused.value.status == 403 and "local callers" in refused.value.body.message
        formfile = b"NAME web\n"
        for entries, needle in [
            ([(entry("Formfile"), formfile), (entry("../escape"), b"x")], "relative name"),
            ([(entry("/etc/passwd"), b"x")], "relative name"),
            ([(entry("Formfile"), formfile), (entry("l", tarfile.SYMTYPE, "/etc/passwd"), b"")],
             "regular files and directories only"),
            ([(entry("Formfile"), formfile), (entry("h", tarfile.LNKTYPE, "Formfile"), b"")],
             "regular files and directories only"),
            ([(entry("dev", tarfile.CHRTYPE), b"")], "regular files and directories only"),
            ([(entry("other"), b"x")], "no Formfile at the top"),
        ]:
            with pytest.raises(ApiError) as refused:
                await remote.call(pack_routes.pack_build_start,
                                  pm.PackBuildStart(context_tar=tar_of(entries)))
            assert refused.value.status == 400 and needle in refused.value.body.message
        with pytest.raises(ApiError) as refused:
            await remote.call(pack_routes.pack_build_start,
                              pm.PackBuildStart(context_tar="not base64!"))
        assert "base64" in refused.value.body.message
        assert scratch(node) == []

        tar = base64.b64encode(pack_context(context)).decode()
        started = await remote.call(pack_routes.pack_build_start,
                                    pm.PackBuildStart(context_tar=tar, name="uploaded"))
        done = await wait_build(remote, started.id)
        assert done.state == "done" and done.name == "uploaded"
        assert scratch(node) == []
        images = (await remote.call(vm_routes.image_list)).images
        assert [i.name for i in images] == ["uploaded"]


async def test_fake_builder_queue_is_bounded(short_tmp, fake) -> None:
    fake.gate.clear()
    async with pack_node(short_tmp, fake.toolchain(), pack={"max_queued": 1}) as service:
        async with client_of(service) as client:
            ids = []
            for n in range(2):  # one running, one queued
                ctx = write_context(short_tmp / f"q{n}", f"NAME q{n}\n")
                ids.append((await client.call(pack_routes.pack_build_start,
                                              pm.PackBuildStart(context=str(ctx)))).id)
            extra = write_context(short_tmp / "q9", "NAME q9\n")
            with pytest.raises(ApiError) as refused:
                await client.call(pack_routes.pack_build_start,
                                  pm.PackBuildStart(context=str(extra)))
            assert refused.value.status == 503 and "pack.max_queued" in refused.value.body.message
            fake.gate.set()
            for build_id in ids:
                assert (await wait_build(client, build_id)).state == "done"
            await asyncio.sleep(0)


async def test_fake_builder_another_member_cannot_cancel_or_flood(short_tmp, fake) -> None:
    """A member (here a key the config trusts) may not cancel a build it did not start, and
    holds at most 2 unfinished builds on a node: the queue is not one caller's to fill."""
    from formation.identity import NodeIdentity

    other = NodeIdentity.generate()
    fake.gate.clear()
    async with pack_node(short_tmp, fake.toolchain(),
                         trusted_keys=[other.public_key_hex]) as service:
        mine = write_context(short_tmp / "mine", "NAME mine\n")
        theirs = write_context(short_tmp / "theirs", "NAME theirs\nRUN echo x\n")
        tar = base64.b64encode(pack_context(theirs)).decode()
        address = service.listen_addresses()[1].removeprefix("tcp:")
        async with client_of(service) as local, \
                NodeClient.tcp(address, other, timeout_s=30) as remote:
            started = await local.call(pack_routes.pack_build_start,
                                       pm.PackBuildStart(context=str(mine)))
            with pytest.raises(ApiError) as refused:
                await remote.call(pack_routes.pack_build_cancel, build=started.id)
            assert refused.value.status == 403 and "only who started it" in \
                refused.value.body.message
            held = [await remote.call(pack_routes.pack_build_start,
                                      pm.PackBuildStart(context_tar=tar, name=f"t{n}"))
                    for n in range(2)]
            with pytest.raises(ApiError) as refused:
                await remote.call(pack_routes.pack_build_start,
                                  pm.PackBuildStart(context_tar=tar, name="t9"))
            assert refused.value.status == 429
            # its own build it may cancel; the local one is untouched
            assert (await remote.call(pack_routes.pack_build_cancel,
                                      build=held[1].id)).state == "cancelled"
            fake.gate.set()
            assert (await wait_build(local, started.id)).state == "done"
            assert (await wait_build(local, held[0].id)).state == "done"
            assert scratch(service) == []


async def test_fake_builder_never_takes_another_nodes_image_name(node, fake, short_tmp) -> None:
    """Another member added an image named `taken`: a build of that name is refused at once
    (409), before anything is built; under another name it is built."""
    import os
    import time

    from formation.identity import NodeIdentity
    from formation.node.state.image_manifest import image_digest
    from formation.node.state.op import build_body, sign_body

    assert node.parts is not None
    store = node.parts.state.require_store()
    other = NodeIdentity.generate()
    await store.append("node.admit", {"node": other.public_key_hex, "roles": ["member"]})
    parts = {"kernel": {"digest": os.urandom(32).hex(), "size": 7}}
    payload = {"digest": image_digest(parts, ""), "name": "taken", "size": 7, "parts": parts,
               "cmdline": ""}
    network = store.network_id
    assert network is not None
    raw = sign_body(build_body(network, other.public_key, 1, None, await store.heads(),
                               (int(time.time() * 1000), 0), "image.add", payload), other.sign)
    assert [v.status for v in await store.ingest([raw])] == ["accepted"]

    context = write_context(short_tmp / "taken", "NAME taken\n")
    async with client_of(node) as client:
        with pytest.raises(ApiError) as refused:
            await client.call(pack_routes.pack_build_start,
                              pm.PackBuildStart(context=str(context)))
        assert refused.value.status == 409
        assert refused.value.body.message.startswith("name: an image named taken was added by "
                                                     "another node")
        assert fake.started == [] and scratch(node) == []
        renamed = await wait_build(client, (await client.call(
            pack_routes.pack_build_start,
            pm.PackBuildStart(context=str(context), name="mine"))).id)
        assert renamed.state == "done"
        names = sorted(i.name for i in (await client.call(vm_routes.image_list)).images)
        assert names == ["mine", "taken"]
