"""The client side of tenant blob uploads (api/tenant_blob_routes.py): each image file the node
does not hold yet goes up in chunks of at most 525,000 bytes (one signed request each, under the
API's body limit), in order; the node verifies the SHA-256 with the last chunk. Progress goes to
stderr for big files, so `--json` output stays one object on stdout."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import click

from formation.api import tenant_blob_models as tb
from formation.api import tenant_blob_routes as tbr
from formation.api.pack_models import MAX_CHUNK_B64
from formation.errors import FormationError

CHUNK = MAX_CHUNK_B64 // 4 * 3  # bytes whose base64 fits one chunk
PROGRESS_FROM = 8 << 20  # files this large report progress


class UploadFailed(FormationError):
    pass


async def upload_missing(client: Any, parts: dict[str, tuple[str, dict[str, Any]]]) -> list[str]:
    """Upload each (path, {digest, size}) the node lacks; returns the parts uploaded."""
    sent = []
    for part, (path, info) in parts.items():
        held = await client.call(tbr.tenant_blob_held, digest=info["digest"])
        if not held.held:
            await upload_file(client, part, path, info["digest"], info["size"])
            sent.append(part)
    return sent


async def upload_file(client: Any, part: str, path: str, digest: str, size: int) -> None:
    opened = await client.call(tbr.tenant_blob_start, tb.TenantBlobStart(size=size,
                                                                         sha256=digest))
    if opened.stored or opened.id is None:
        return
    show = size >= PROGRESS_FROM
    try:
        f = await asyncio.to_thread(open, path, "rb")
    except OSError as exc:
        raise UploadFailed(f"{part}: cannot read {path}: {exc.strerror or exc}") from None
    with f:
        offset = 0
        while offset < size:
            data = await asyncio.to_thread(f.read, min(CHUNK, size - offset))
            if not data:
                await client.call(tbr.tenant_blob_cancel, upload=opened.id)
                raise UploadFailed(f"{part}: {path} is shorter than when it was hashed "
                                   f"({offset} of {size} bytes); run the command again")
            done = await client.call(tbr.tenant_blob_chunk, tb.TenantBlobChunk(
                offset=offset, data=base64.b64encode(data).decode()), upload=opened.id)
            offset = done.received
            if show:
                click.echo(f"\ruploading {part}: {offset >> 20}/{size >> 20} MiB", err=True,
                           nl=False)
    if show:
        click.echo("", err=True)
    if not done.stored:
        raise UploadFailed(f"{part}: the node did not store the upload")
