"""Handlers of the tenant blob routes (api/tenant_blob_routes.py), mixed into ImageHandlers
(one handler object per part). The caller's key must be an account's, as the replicated state
says now: the server already refused other keys (audience TENANT), and the handler looks the
account up again (its budget and disk quota); a key removed between two chunks is refused by
the same checks at its next chunk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from formation.api import tenant_blob_models as tb
from formation.api.caller import Caller
from formation.api.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    HandlerError,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unavailable,
)
from formation.api.models import Empty, FieldError
from formation.node.vmm.images.tenant_blobs import GIB, BlobUpload, BlobUploadError

if TYPE_CHECKING:
    from formation.node.vmm.images.component import ImagesComponent


class TenantBlobHandlers:
    part: ImagesComponent

    async def _uploader(self, caller: Caller) -> tuple[str, str, int | None]:
        """(key, account name, the account's disk quota in bytes or None). The local operator
        uploads as "local" (budgeted as one account): the route's audience lets it, as every
        route; on the node itself `formation image import` of paths is the better way."""
        if caller.local:
            return "local", "(local)", None
        if caller.key is None:
            raise Forbidden("upload: sign the request with an account key")
        authority = await self.part.state.require_store().authority()
        account = authority.accounts.of_key(caller.key)
        if account is None:
            raise Forbidden(f"key {caller.key[:16]}: not a key of any account of this network")
        disk_gb = account.quotas.get("disk_gb")
        return caller.key, account.name, None if disk_gb is None else disk_gb * GIB

    async def _image_bytes(self, account: str) -> int:
        """The bytes of the account's images (each digest once), as the images view says."""
        sizes = {i.get("key"): i.get("size", 0)
                 for i in await self.part.state.require_store().view("images")
                 if i.get("account") == account}
        return sum(v for v in sizes.values() if isinstance(v, int))

    async def tenant_blob_held(self, body: Empty, caller: Caller,
                               digest: str) -> tb.TenantBlobHeld:
        await self._uploader(caller)
        return tb.TenantBlobHeld(digest=digest, held=self.part.require_store().has_blob(digest))

    async def tenant_blob_start(self, body: tb.TenantBlobStart, caller: Caller) -> tb.TenantBlob:
        key, account, quota = await self._uploader(caller)
        owned = 0 if quota is None else await self._image_bytes(account)
        try:
            upload = await self.part.require_blobs().start(key, account, quota, body.size,
                                                           body.sha256, owned)
        except BlobUploadError as exc:
            raise _http(exc) from None
        if upload is None:
            return tb.TenantBlob(sha256=body.sha256, size=body.size, received=body.size,
                                 stored=True)
        return _model(upload)

    async def tenant_blob_chunk(self, body: tb.TenantBlobChunk, caller: Caller,
                                upload: str) -> tb.TenantBlob:
        key, _account, _quota = await self._uploader(caller)
        try:
            found = await self.part.require_blobs().chunk(key, upload, body.offset, body.data)
        except BlobUploadError as exc:
            raise _http(exc) from None
        return _model(found)

    async def tenant_blob_cancel(self, body: Empty, caller: Caller,
                                 upload: str) -> tb.TenantBlob:
        key, _account, _quota = await self._uploader(caller)
        try:
            found = await self.part.require_blobs().cancel(key, upload)
        except BlobUploadError as exc:
            raise _http(exc) from None
        return _model(found)


def _model(upload: BlobUpload) -> tb.TenantBlob:
    return tb.TenantBlob(id=upload.id, sha256=upload.sha256, size=upload.size,
                         received=upload.received, stored=upload.received == upload.size)


def _http(exc: BlobUploadError) -> HandlerError:
    kinds: dict[int, type[HandlerError]] = {
        404: NotFound, 409: Conflict, 413: PayloadTooLarge, 429: TooManyRequests,
        503: Unavailable}
    error = kinds.get(exc.status, BadRequest)
    return error(str(exc), [FieldError(field=exc.field, message=str(exc))])
