"""Two real node services on loopback (state store + images part each, trusting each other's
keys): an image imported on A is fetched by B over the signed blob route, streamed and verified;
a corrupted transfer is refused and nothing of it is kept; outsiders and malformed digests get
nothing."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from settings_factory import make_settings
from waiting import until
from yarl import URL

from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api import vm_models as vm
from formation.api import vm_routes
from formation.api.auth import sign_request
from formation.api.client import ApiError, NodeClient
from formation.identity import load_or_create_identity
from formation.node.service import NodeService
from formation.node.state.component import StateComponent
from formation.node.vmm.images.component import ImagesComponent
from formation.node.vmm.images.fetch import Fetcher, Peer
from formation.node.vmm.images.store import ImageError, ImageStore
from tests.ports import free_port

DISK_BYTES = 6 * (1 << 20) + 123  # several chunks: the stream is really streamed


@dataclass
class Node:
    service: NodeService
    images: ImagesComponent
    address: str

    @property
    def key(self) -> str:
        assert self.service.identity is not None
        return self.service.identity.public_key_hex

    def peer(self, name: str) -> Peer:
        return Peer(self.key, self.address, name)


@pytest.fixture
async def nodes(short_tmp: Path) -> AsyncIterator[tuple[Node, Node]]:
    ports = [free_port(), free_port()]
    keys = [load_or_create_identity(short_tmp / n / "data").public_key_hex for n in "ab"]
    built = []
    for i, name in enumerate("ab"):
        settings = make_settings(
            short_tmp / name, name=name,
            api={"socket": str(short_tmp / f"{name}.sock"), "listen": f"127.0.0.1:{ports[i]}"},
            trusted_keys=[keys[1 - i]],
            state={"peers": [f"{keys[1 - i]}@127.0.0.1:{ports[1 - i]}"],
                   "anti_entropy_interval_s": 0.2})
        state = StateComponent()
        images = ImagesComponent(state)
        built.append(Node(NodeService(settings, components=[state, images]), images,
                          f"127.0.0.1:{ports[i]}"))
    for node in built:
        await node.service.start()
    try:
        yield built[0], built[1]
    finally:
        for node in built:
            await node.service.stop()


@pytest.fixture
def files(short_tmp: Path) -> dict[str, Path]:
    src = short_tmp / "src"
    src.mkdir()
    out = {"kernel": src / "vmlinuz", "initrd": src / "initrd.img", "disk": src / "root.img"}
    out["kernel"].write_bytes(os.urandom(300_000))
    out["initrd"].write_bytes(os.urandom(90_000))
    out["disk"].write_bytes(os.urandom(DISK_BYTES))
    return out


async def imported(node: Node, files: dict[str, Path]) -> dict:
    return await node.images.require_store().import_files(
        "web", files["kernel"], files["initrd"], files["disk"])


def leftovers(node: Node) -> list[str]:
    store = node.images.require_store()
    return sorted(p.name for p in (*store.blobs.iterdir(), *store.tmp.iterdir()))


async def test_an_image_imported_on_a_is_fetched_by_b_and_verified(nodes, files):
    a, b = nodes
    payload = await imported(a, files)
    assert not b.images.require_store().has(payload)
    assert b.images.fetcher is not None
    paths = await b.images.fetcher.ensure(payload, [a.peer("a")])
    for part, path in paths.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == payload["parts"][part]["digest"]
        assert path.read_bytes() == files[part].read_bytes()
    assert b.images.require_store().has(payload)
    assert list(b.images.require_store().tmp.iterdir()) == []
    # a second ensure has nothing to fetch: it succeeds with no peer at all
    assert await b.images.fetcher.ensure(payload, []) == paths


async def test_an_image_added_through_the_api_on_a_is_ensured_by_name_on_b(nodes, files):
    """The whole path a reconciler takes: A's import writes image.add, it replicates to B, and
    B's `ensure("web")` finds the parts in the op and the peer among its replication peers."""
    a, b = nodes
    async with NodeClient.unix(a.service.settings.api.socket) as client:
        await client.call(sr.state_create_network, sm.CreateNetworkRequest(name="img"))
        image = await client.call(vm_routes.image_import, vm.ImageImport(
            name="web", kernel=str(files["kernel"]), disk=str(files["disk"])))
        with pytest.raises(ApiError) as exc:
            await client.call(vm_routes.image_import, vm.ImageImport(
                name="other", kernel=str(files["kernel"]), initrd="/nonexistent/initrd"))
        assert exc.value.status == 400 and exc.value.body.fields[0].field == "initrd"
        assert "initrd (--initrd): /nonexistent/initrd does not exist" in exc.value.body.message
    assert image.local and set(image.parts) == {"kernel", "disk"}

    async def replicated() -> bool:
        return await b.images.find("web") is not None

    await until(replicated, 20, what="image.add replicated to b")
    paths = await b.images.ensure("web")
    assert paths["disk"].read_bytes() == files["disk"].read_bytes()
    async with NodeClient.unix(b.service.settings.api.socket) as client:
        [listed] = (await client.call(vm_routes.image_list)).images
    assert listed.digest == image.digest and listed.local

    def published(node: Node) -> list[tuple[str, dict]]:
        sub = node.service.bus.subscribe("images", since=0)
        node.service.bus.unsubscribe(sub)
        return _drain(sub)

    assert [k for k, _ in published(a)] == ["imported"]
    [(kind, data)] = published(b)
    assert kind == "fetched" and data["parts"] == ["disk", "kernel"]
    assert data["bytes"] == image.size

    # removed on A: B frees its copies once the image.remove reaches it
    async with NodeClient.unix(a.service.settings.api.socket) as client:
        await client.call(vm_routes.image_delete, image="web")
    assert leftovers(a) == []

    def b_freed() -> bool:
        return leftovers(b) == []

    await until(b_freed, 20, what="b to free the removed image's blobs",
                context=lambda: leftovers(b))


def _drain(sub) -> list[tuple[str, dict]]:
    out = []
    while not sub.queue.empty():
        event = sub.queue.get_nowait()
        out.append((event.kind, event.data))
    return out


async def test_a_blob_altered_on_the_serving_node_is_refused_and_nothing_is_kept(nodes, files):
    a, b = nodes
    payload = await imported(a, files)
    disk = a.images.require_store().paths(payload)["disk"]
    disk.chmod(0o644)
    data = bytearray(disk.read_bytes())
    data[DISK_BYTES // 2] ^= 0xFF  # one byte rotted on A's disk: same size, other hash
    disk.write_bytes(bytes(data))
    assert b.images.fetcher is not None
    with pytest.raises(ImageError) as exc:
        await b.images.fetcher.ensure(payload, [a.peer("h2")])
    digest12 = payload["parts"]["disk"]["digest"][:12]
    assert str(exc.value) == (f"image web: blob {digest12} from h2 did not match its digest "
                              f"(corrupted transfer), no other node has it")
    store = b.images.require_store()
    assert not store.has_blob(payload["parts"]["disk"]["digest"])
    assert list(store.tmp.iterdir()) == []
    assert not store.has(payload)


@pytest.fixture
async def hostile_peer() -> AsyncIterator[tuple[str, dict[str, bytes]]]:
    """A node that answers every blob request with whatever the test puts in `serve` (no
    signature check: it is the hostile one)."""
    serve: dict[str, bytes] = {}

    async def blob(request: web.Request) -> web.StreamResponse:
        body = serve.get(request.match_info["digest"], b"")
        if serve.get("chunked"):
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            for i in range(0, len(body), 65536):
                await response.write(body[i:i + 65536])
            await response.write_eof()
            return response
        return web.Response(body=body, content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/v1/images/blobs/{digest}", blob)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"127.0.0.1:{port}", serve
    finally:
        await runner.cleanup()


async def test_a_hostile_peer_s_wrong_bytes_are_refused_and_the_next_peer_is_asked(
        nodes, files, hostile_peer):
    a, b = nodes
    address, serve = hostile_peer
    payload = await imported(a, files)
    for part in payload["parts"].values():
        serve[part["digest"]] = os.urandom(part["size"])  # right size, wrong bytes
    evil = Peer("e" * 64, address, "evil")
    assert b.images.fetcher is not None
    paths = await b.images.fetcher.ensure(payload, [evil, a.peer("a")])
    assert paths["disk"].read_bytes() == files["disk"].read_bytes()


async def test_a_peer_sending_more_than_the_declared_size_is_cut_off(nodes, files,
                                                                     hostile_peer):
    a, b = nodes
    address, serve = hostile_peer
    payload = await imported(a, files)
    kernel = payload["parts"]["kernel"]
    serve[kernel["digest"]] = os.urandom(kernel["size"] + 10_000_000)
    evil = Peer("e" * 64, address, "evil")
    assert b.images.fetcher is not None
    with pytest.raises(ImageError, match=r"from evil offered \d+ bytes, more than the declared"):
        await b.images.fetcher.ensure(payload, [evil])
    serve["chunked"] = b"1"  # no Content-Length: the stream itself is cut off
    with pytest.raises(ImageError, match="from evil sent more than the declared"):
        await b.images.fetcher.ensure(payload, [evil])
    assert leftovers(b) == []


async def test_a_non_member_asking_for_a_blob_is_refused(nodes, files, short_tmp):
    a, _ = nodes
    payload = await imported(a, files)
    outsider = load_or_create_identity(short_tmp / "outsider")
    target = f"/v1/images/blobs/{payload['parts']['kernel']['digest']}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://{a.address}{target}") as resp:  # unsigned
            assert resp.status == 401
        headers = sign_request(outsider, "GET", target, b"", a.key)
        async with session.get(f"http://{a.address}{target}", headers=headers) as resp:
            assert resp.status in (401, 403)
            assert await resp.read() != files["kernel"].read_bytes()
    # an outsider's fetcher gets nothing either, and keeps nothing
    store = ImageStore(short_tmp / "outsider-images")
    store.open()
    with pytest.raises(ImageError, match="from a answered HTTP 401"):
        await Fetcher(store, outsider).ensure(payload, [a.peer("a")])
    assert list(store.blobs.iterdir()) == [] and list(store.tmp.iterdir()) == []


@pytest.mark.parametrize("digest", ["..%2F..%2Fstate.db", "..", "A" * 64, "a" * 63,
                                    "%2e%2e%2fidentity"])
async def test_a_digest_that_is_not_64_hex_is_refused(nodes, digest):
    a, b = nodes
    target = f"/v1/images/blobs/{digest}"
    assert b.service.identity is not None
    headers = sign_request(b.service.identity, "GET", target, b"", a.key)
    async with aiohttp.ClientSession() as session:
        # sent as is (yarl would otherwise resolve the dots before it leaves)
        url = URL(f"http://{a.address}{target}", encoded=True)
        async with session.get(url, headers=headers) as resp:
            assert resp.status in (400, 404), resp.status
            assert b"private" not in (await resp.read()).lower()


async def test_a_member_asking_for_a_blob_this_node_lacks_gets_404(nodes):
    a, b = nodes
    target = f"/v1/images/blobs/{'c' * 64}"
    assert b.service.identity is not None
    headers = sign_request(b.service.identity, "GET", target, b"", a.key)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://{a.address}{target}", headers=headers) as resp:
            assert resp.status == 404



async def test_a_member_that_did_not_add_an_image_cannot_remove_it(nodes, files):
    a, b = nodes
    async with NodeClient.unix(a.service.settings.api.socket) as client:
        await client.call(sr.state_create_network, sm.CreateNetworkRequest(name="img"))
        await client.call(vm_routes.image_import, vm.ImageImport(
            name="web", kernel=str(files["kernel"])))
    assert b.service.identity is not None
    async with NodeClient.tcp(a.address, b.service.identity, node_key=a.key) as remote:
        with pytest.raises(ApiError) as exc:
            await remote.call(vm_routes.image_delete, image="web")
        assert exc.value.status == 403
        assert "only the node that added it or an admin" in exc.value.body.message
        with pytest.raises(ApiError) as imported_remotely:  # import is for local callers only
            await remote.call(vm_routes.image_import, vm.ImageImport(
                name="evil", kernel="/etc/shadow"))
        assert imported_remotely.value.status == 403
        assert [i.name for i in (await remote.call(vm_routes.image_list)).images] == ["web"]
    assert a.images.require_store().usage()[0] == 1  # nothing freed


async def test_a_big_disk_is_streamed_not_held_in_memory(nodes, short_tmp):
    """A 48 MiB disk crosses both nodes (served by sendfile, written in 1 MiB pieces) while
    Python's allocations peak far below its size."""
    import tracemalloc

    a, b = nodes
    kernel, disk = short_tmp / "k", short_tmp / "big.img"
    kernel.write_bytes(b"k" * 1000)
    with open(disk, "wb") as f:  # noqa: ASYNC230 - test setup, nothing else runs
        for _ in range(48):
            f.write(os.urandom(1 << 20))
    payload = await a.images.require_store().import_files("big", kernel, disk=disk)
    assert b.images.fetcher is not None
    tracemalloc.start()
    try:
        await b.images.fetcher.ensure(payload, [a.peer("a")])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert b.images.require_store().has(payload)
    assert peak < 12 * (1 << 20), f"peak {peak / 2**20:.1f} MiB while fetching 48 MiB"
