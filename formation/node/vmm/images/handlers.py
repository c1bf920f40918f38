"""The image endpoints (api/vm_routes.py): list, import (local callers), delete, and the blob
route other members fetch from. Writes are image.add / image.remove ops signed by this node."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from formation.api import vm_models as vm
from formation.api.caller import Caller
from formation.api.errors import BadRequest, Conflict, Forbidden, NotFound
from formation.api.models import Empty, FieldError
from formation.api.rendered import Rendered
from formation.errors import OpError
from formation.node.vmm.images.blob import HEX64
from formation.node.vmm.images.store import ImageError
from formation.node.vmm.images.tenant_blob_handlers import TenantBlobHandlers

if TYPE_CHECKING:
    from formation.node.vmm.images.component import ImagesComponent

OCTET_STREAM = "application/octet-stream"


class ImageHandlers(TenantBlobHandlers):
    def __init__(self, part: ImagesComponent) -> None:
        self.part = part

    def _model(self, image: dict[str, Any]) -> vm.Image:
        store = self.part.require_store()
        parts = image["parts"]
        return vm.Image(
            digest=image["digest"], name=image["name"], size=image["size"],
            parts={k: vm.ImagePart(**v) for k, v in parts.items()}, cmdline=image["cmdline"],
            added_by=image.get("added_by", ""), local=bool(parts) and store.has(image))

    async def image_list(self, body: Empty, caller: Caller) -> vm.ImageList:
        return vm.ImageList(images=[self._model(i) for i in await self.part.catalog()])

    async def image_import(self, body: vm.ImageImport, caller: Caller) -> vm.Image:
        store = self.part.require_store()
        async with self.part.import_lock:
            taken = next((i for i in await self.part.catalog() if i["name"] == body.name), None)
            if taken is not None:
                raise Conflict(f"name: an image named {body.name} exists "
                               f"({taken['digest'][:12]}); remove it or choose another name",
                               [FieldError(field="name", message="taken")])
            try:
                payload = await store.import_files(
                    body.name, Path(body.kernel), _path(body.initrd), _path(body.disk),
                    body.cmdline)
            except ImageError as exc:
                raise BadRequest(str(exc), [FieldError(field=exc.field or "body",
                                                       message=str(exc))]) from None
            assert self.part.manifests is not None
            await asyncio.to_thread(self.part.manifests.save, payload)
            try:
                op = await self.part.state.require_store().append("image.add", payload)
            except OpError as exc:
                raise BadRequest(f"image.add refused: {exc}") from None
        self.part.publish("imported", {"image": payload["digest"], "name": payload["name"],
                                       "bytes": payload["size"]})
        return self._model({**payload, "added_by": op.author.hex()})

    async def image_delete(self, body: Empty, caller: Caller, image: str) -> Empty:
        store = self.part.state.require_store()
        found = await self.part.find(image)
        if found is None:
            raise NotFound(f"no image named {image}")
        if not caller.local and caller.key != found["added_by"] and not caller.admin:
            raise Forbidden(f"image {found['name']}: only the node that added it or an admin "
                            f"may remove it")
        try:
            for add in _adds_to_remove(await store.view("images"), found["digest"]):
                await store.append("image.remove", {"image": add})
        except OpError as exc:
            raise Forbidden(f"image.remove refused: {exc}") from None
        await self.part.collect()
        return Empty()

    async def image_blob(self, body: Empty, caller: Caller,
                         digest: str) -> Rendered[vm.ImageBlob]:
        if not HEX64.match(digest):
            raise BadRequest("digest: expected a SHA-256, 64 lowercase hex",
                             [FieldError(field="digest", message="64 lowercase hex")])
        store = self.part.require_store()
        if not store.has_blob(digest):
            raise NotFound(f"blob {digest[:12]} is not in this node's image store")
        return Rendered(b"", OCTET_STREAM, file=store.blob_path(digest))


def _adds_to_remove(view: list[dict[str, Any]], digest: str) -> list[str]:
    """The node's own adds of `digest`: an account that added the same bytes under its own name
    keeps its image (it removes it itself). Only where accounts alone added it, theirs."""
    adds = [e for e in view if e.get("key") == digest]
    node_owned = [e for e in adds if "account" not in e]
    return [e["id"] for e in node_owned or adds]


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None
