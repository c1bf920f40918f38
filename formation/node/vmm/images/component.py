"""The "images" part of the node: this node's image store (data_dir/images), its API (list,
import, delete, and the blob route other nodes fetch from), and `ensure()` for the VM
reconciler: every part of an image here and verified, fetched from peers when missing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from formation.api.models import HealthCheck
from formation.errors import OpError
from formation.node.state.op import Op, decode
from formation.node.vmm.images import catalog
from formation.node.vmm.images.fetch import Fetcher
from formation.node.vmm.images.store import ImageError, ImageStore
from formation.node.vmm.images.tenant_blobs import TenantBlobs

if TYPE_CHECKING:
    from formation.node.service import NodeService
    from formation.node.state.component import StateComponent
    from formation.node.state.store import StateStore

log = logging.getLogger(__name__)

STORE_DIR = "images"


class ImagesComponent:
    name = "images"

    def __init__(self, state: StateComponent,
                 api_address: Callable[[str, str], str] = lambda _key, underlay: underlay
                 ) -> None:
        self.state = state
        self.api_address = api_address
        self.store: ImageStore | None = None
        self.fetcher: Fetcher | None = None
        self.manifests: catalog.Manifests | None = None
        self.blobs: TenantBlobs | None = None  # what account keys upload (tenant_blobs.py)
        self.sweep_s = 60.0
        self.import_lock = asyncio.Lock()  # one import at a time: a name is checked, then used
        self._unsubscribe: Callable[[], None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.service: NodeService | None = None

    async def start(self, service: NodeService) -> None:
        assert service.identity is not None
        root = service.settings.data_dir / STORE_DIR
        self.store = ImageStore(root)
        await asyncio.to_thread(self.store.open)
        self.manifests = catalog.Manifests(root)
        self.blobs = TenantBlobs(self.store)
        await asyncio.to_thread(self.blobs.load)
        self.fetcher = Fetcher(self.store, service.identity)
        self._me = service.identity.public_key_hex
        self.service = service
        self._unsubscribe = self.state.require_store().subscribe(self._on_ops)
        sweeper = asyncio.get_running_loop().create_task(self._sweep_loop())
        self._tasks.add(sweeper)
        sweeper.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        for task in list(self._tasks):
            task.cancel()

    def api_handlers(self) -> object:
        from formation.node.vmm.images.handlers import ImageHandlers

        return ImageHandlers(self)

    def health(self) -> list[HealthCheck]:
        if self.store is None:
            return [HealthCheck(name="images", ok=False, detail="not started")]
        blobs, size = self.store.usage()
        detail = f"{blobs} blobs, {size / 2**20:.1f} MiB in {self.store.root}"
        if self.blobs is not None and (self.blobs.open or self.blobs.waiting):
            waiting = sum(s.size for s in self.blobs.waiting.values())
            detail += (f"; tenant uploads: {len(self.blobs.open)} open, "
                       f"{len(self.blobs.waiting)} ({waiting / 2**20:.1f} MiB) no image names")
        return [HealthCheck(name="images", ok=True, detail=detail)]

    # what the other parts use ---------------------------------------------------------------
    def require_store(self) -> ImageStore:
        if self.store is None:
            raise RuntimeError("image store not started")
        return self.store

    def require_blobs(self) -> TenantBlobs:
        if self.blobs is None:
            raise RuntimeError("image store not started")
        return self.blobs

    async def catalog(self) -> list[dict[str, Any]]:
        store = self.state.require_store()
        view = await store.view("images")
        assert self.manifests is not None
        manifests = await asyncio.to_thread(self.manifests.load)
        for element in view:
            # a view that keeps only name and size: the parts are in the image.add op itself
            if "parts" not in element and element.get("key") not in manifests:
                element.update(await self._added(store, element.get("id", "")))
        return catalog.images(view, manifests)

    @staticmethod
    async def _added(store: StateStore, op_id: str) -> dict[str, Any]:
        try:
            raw = await store.get(bytes.fromhex(op_id))
            op = decode(raw) if raw is not None else None
        except (ValueError, OpError):
            return {}
        if op is None or op.kind != "image.add":
            return {}
        return {k: op.payload[k] for k in ("parts", "cmdline") if k in op.payload}

    async def find(self, ref: str) -> dict[str, Any] | None:
        return catalog.find(await self.catalog(), ref)

    async def ensure(self, ref: str) -> dict[str, Path]:
        """The reconciler's call: part -> verified blob path of the image `ref` (digest or
        name), fetching what is missing from peers. ImageError (one line) when it cannot."""
        image = await self.find(ref)
        if image is None:
            raise ImageError(f"image {ref[:64]}: not in the network's images")
        if not image["parts"]:
            raise ImageError(f"image {image['name']}: its image.add names no parts")
        return await self.ensure_payload(image)

    async def ensure_payload(self, image: dict[str, Any]) -> dict[str, Path]:
        assert self.fetcher is not None and self.manifests is not None
        store = self.state.require_store()
        nodes = await store.view("nodes")
        replication = self.state.replication
        extra = [(p.key or "", p.address) for p in replication.peers] if replication else []
        peers = catalog.peers_for(image, nodes, extra, self._me, self.api_address)
        missing = self.require_store().missing(image)
        try:
            paths = await self.fetcher.ensure(image, peers)
        except ImageError as exc:
            self.publish("fetch_failed", {"image": image["digest"], "name": image["name"],
                                          "reason": str(exc)})
            raise
        await asyncio.to_thread(self.manifests.save, image)
        if missing:
            self.publish("fetched", {"image": image["digest"], "name": image["name"],
                                     "parts": sorted(missing),
                                     "bytes": sum(p["size"] for p in missing.values())})
        return paths

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """On the event stream, topic `images`: imported, fetched, fetch_failed."""
        if self.service is not None:
            self.service.publish("images", kind, data)

    # cleaning up ----------------------------------------------------------------------------
    def _on_ops(self, ops: list[Op], origin: str | None) -> None:
        if any(op.kind == "image.remove" for op in ops):
            self._spawn(self.collect())
        if any(op.kind in ("account.remove", "account.set") for op in ops):
            self._spawn(self._account_changed())

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _account_changed(self) -> None:
        """A removed account's key (or one its account dropped) loses its open uploads at
        once, and the account its uploads no image names yet."""
        blobs = self.require_blobs()
        accounts = (await self.state.require_store().authority()).accounts
        await blobs.drop_keys(lambda key: accounts.of_key(key) is not None)
        if blobs.waiting:
            await self.sweep_blobs()

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_s)
            try:
                await self.sweep_blobs()
            except Exception:  # a failed sweep is retried at the next one
                log.exception("sweeping uploaded blobs failed")

    async def sweep_blobs(self) -> list[str]:
        """Uploaded blobs (tenant_blobs.py) that an image.add now names become that image's:
        its manifest is saved, so `collect` frees them when the image is removed. Those no
        image named within the hour are deleted. Under the import lock, as `collect`."""
        assert self.manifests is not None
        blobs = self.require_blobs()
        if not blobs.waiting:
            return []
        async with self.import_lock:
            images = await self.catalog()
            named = {p["digest"]: image for image in images for p in image["parts"].values()}
            for digest in set(named) & set(blobs.waiting):
                await asyncio.to_thread(self.manifests.save, named[digest])
            held = await asyncio.to_thread(self.manifests.load)
            keep = {p["digest"] for image in held.values()
                    for p in image.get("parts", {}).values()}
            accounts = (await self.state.require_store().authority()).accounts
            live = {a.account for a in blobs.waiting.values()
                    if accounts.by_name.get(a.account) is not None}
            return await blobs.sweep(set(named), keep, live)

    async def collect(self) -> int:
        """Delete the blobs of images held here that the network removed, unless another
        image or an instance still uses them (a VM's disk overlay is backed by its image's
        disk blob). Returns the bytes freed. Not while an import runs: its blobs are in the
        store before its image.add is in the view."""
        async with self.import_lock:
            return await self._collect()

    async def _collect(self) -> int:
        assert self.manifests is not None
        store = self.state.require_store()
        live = {image["digest"]: image for image in await self.catalog()}
        in_use = {i.get("spec", {}).get("image") for i in await store.view("instances")}
        held = await asyncio.to_thread(self.manifests.load)
        keep = {p["digest"] for d, image in held.items() if d in live or d in in_use
                for p in image.get("parts", {}).values()}
        keep |= {p["digest"] for image in live.values() for p in image["parts"].values()}
        gone = [d for d in held if d not in live and d not in in_use]
        drop = {p["digest"] for d in gone for p in held[d].get("parts", {}).values()} - keep
        freed = await asyncio.to_thread(self.require_store().remove_blobs, drop)
        for digest in gone:
            await asyncio.to_thread(self.manifests.drop, digest)
        if gone:
            log.info("image blobs freed", extra={"fields": {"images": len(gone),
                                                             "bytes": freed}})
        return freed
