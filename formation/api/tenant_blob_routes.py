"""Endpoints of tenant blob uploads (node/vmm/images/tenant_blobs.py). Audience TENANT: keys of
accounts; an upload is only its uploader's key's (another key is told there is none), and a
complete, verified blob lands in the node's image store under its digest, from where the other
nodes fetch it once an image.add names it."""

from __future__ import annotations

from typing import Any

from formation.api import tenant_blob_models as tb
from formation.api.caller import Audience as A
from formation.api.endpoint import Endpoint
from formation.api.models import Empty
from formation.api.pack_models import UPLOAD_ID

UPLOAD = (("upload", UPLOAD_ID),)
DIGEST = (("digest", tb.DIGEST),)

tenant_blob_held = Endpoint(
    "tenant_blob_held", "GET", "/v1/tenant/blobs/{digest}", Empty, tb.TenantBlobHeld,
    "Whether this node's image store holds a blob (ask before uploading it)",
    path_patterns=DIGEST, audience=A.TENANT,
)
tenant_blob_start = Endpoint(
    "tenant_blob_start", "POST", "/v1/tenant/blobs", tb.TenantBlobStart, tb.TenantBlob,
    "Open a chunked upload of an image file (declared size and SHA-256) for the key's account",
    errors=((403, "Not an account key (or the local socket)"),
            (413, "Over the account's budget for unreferenced blobs or its disk quota"),
            (429, "This key has too many uploads open"),
            (503, "The node's space for uploads is taken")),
    audience=A.TENANT,
)
tenant_blob_chunk = Endpoint(
    "tenant_blob_chunk", "PUT", "/v1/tenant/blobs/uploads/{upload}", tb.TenantBlobChunk,
    tb.TenantBlob, "Append the next chunk (offset = bytes received so far); the last one "
    "verifies the SHA-256 and stores the blob",
    path_patterns=UPLOAD, errors=((404, "No such upload of this key"),
                                  (409, "Not the next offset"),
                                  (413, "Past the declared size")),
    audience=A.TENANT,
)
tenant_blob_cancel = Endpoint(
    "tenant_blob_cancel", "DELETE", "/v1/tenant/blobs/uploads/{upload}", Empty, tb.TenantBlob,
    "Drop an open upload (its space is free at once)",
    path_patterns=UPLOAD, errors=((404, "No such upload of this key"),),
    audience=A.TENANT,
)

ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (
    tenant_blob_held, tenant_blob_start, tenant_blob_chunk, tenant_blob_cancel)
