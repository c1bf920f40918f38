"""One chunk of an upload sent in pieces (build contexts: node/pack/uploads.py; tenants' image
files: node/vmm/images/tenant_blobs.py): both take chunks in order, as base64, never past the
size declared up front, and refuse the same way, so this check is written once."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable


def chunk_bytes(received: int, size: int, offset: int, data: str,
                error: Callable[[str, str, int], Exception]) -> bytes:
    """The chunk's bytes, or `error(message, field, status)` raised: 409 when `offset` is not
    the bytes received so far, 400 for bad base64, 413 past the declared `size`."""
    if offset != received:
        raise error(f"offset: expected {received} (the bytes received so far), got {offset}",
                    "offset", 409)
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise error("data: expected base64", "data", 400) from None
    if received + len(raw) > size:
        raise error(f"data: past the declared size of {size} bytes", "data", 413)
    return raw
