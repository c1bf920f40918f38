"""Models of the tenant blob routes (api/tenant_blob_routes.py): an account key uploads the
files of an image (kernel, initrd, disk) into a node's image store in chunks, so that a person
who owns no node can `tenant image-add` files from a laptop. Same chunk shape as pack uploads
(pack_models.py): each request stays under the API's 1 MiB body limit."""

from pydantic import Field

from formation.api.models import Model
from formation.api.pack_models import MAX_CHUNK_B64, UPLOAD_ID

DIGEST = r"^[0-9a-f]{64}$"
# A disk image may be large; what one account may hold unreferenced is bounded separately
# (node/vmm/images/tenant_blobs.py), and the node's free disk is checked at the start.
MAX_BLOB_BYTES = 64 * 1024**3


class TenantBlobStart(Model):
    """Open an upload of one blob, declared first: the node reserves its size before a byte
    arrives and refuses what it cannot hold."""

    size: int = Field(ge=1, le=MAX_BLOB_BYTES, description="the file's bytes")
    sha256: str = Field(pattern=DIGEST, description="the file's SHA-256 (hex): its digest")


class TenantBlobChunk(Model):
    """The next bytes: `offset` is the bytes the node has received so far. The chunk that
    completes the declared size also verifies the SHA-256 and stores the blob."""

    offset: int = Field(ge=0)
    data: str = Field(min_length=1, max_length=MAX_CHUNK_B64, description="base64")


class TenantBlob(Model):
    id: str | None = Field(None, pattern=UPLOAD_ID,
                           description="the open upload; none when the node holds it already")
    sha256: str = Field(pattern=DIGEST)
    size: int
    received: int = Field(description="bytes received so far (the next chunk's offset)")
    stored: bool = Field(description="the blob is in the node's image store, verified")


class TenantBlobHeld(Model):
    digest: str = Field(pattern=DIGEST)
    held: bool = Field(description="this node's image store holds a verified blob of this "
                       "digest (an upload is then not needed)")
