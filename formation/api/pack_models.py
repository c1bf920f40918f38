"""Models of the workload-build endpoints (formation/node/pack): start a build of a Formfile and
its build context on a node, read its state, list the builds the node knows. A build's
progress is also published on the event stream, topic `pack` (docs/protocol.md)."""


from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from formation.api.models import Model

BUILD_ID = r"^[0-9a-f]{16}$"
NAME = r"^[a-z][a-z0-9-]{0,62}$"
# A tar of the build context travels in the JSON body (base64), whose limit is the server's
# 1 MiB: about 760 KiB of tar. Larger contexts are built from a path on the node.
MAX_CONTEXT_TAR_B64 = 1_000_000

UPLOAD_ID = r"^[0-9a-f]{16}$"
# Larger contexts are uploaded in chunks (PackUploadStart, then PackUploadChunk in order),
# each request under the 1 MiB limit: 700,000 base64 characters = 525,000 bytes a chunk.
MAX_CHUNK_B64 = 700_000
MAX_UPLOAD_BYTES = 256 * 1024 * 1024

BuildState = Literal["queued", "running", "done", "failed", "cancelled"]


class PackBuildStart(Model):
    """Exactly one of `context` (a directory on the node: local callers only) and
    `context_tar` (the context uploaded: any member)."""

    context: str | None = Field(
        None, min_length=1, max_length=4096,
        description="absolute path on the node of the build context (a directory holding "
        "the Formfile) or of a Formfile (its directory is the context); local callers only")
    context_tar: str | None = Field(
        None, max_length=MAX_CONTEXT_TAR_B64,
        description="base64 of a tar (optionally gzip) of the build context, the Formfile at "
        "its top; regular files and directories only")
    name: str | None = Field(None, pattern=NAME,
                             description="the image's name; default: the Formfile's NAME")
    reuse: bool = Field(True, description="when an image built from the same Formfile and "
                        "context (equal context digest) exists, use it instead of building")

    upload: str | None = Field(
        None, pattern=UPLOAD_ID,
        description="a complete chunked upload of the context's tar (pack_upload_start), "
        "consumed by this build")

    @model_validator(mode="after")
    def _one_context(self) -> "PackBuildStart":
        given = [v for v in (self.context, self.context_tar, self.upload) if v is not None]
        if len(given) != 1:
            raise ValueError("context: expected exactly one of context (a path on the node), "
                             "context_tar (an uploaded tar) and upload (a chunked upload)")
        return self


class PackUploadStart(Model):
    """Opens an upload of a build context's tar (gzip allowed) too large for context_tar."""

    size: int = Field(ge=1, description=f"the tar's bytes (at most {MAX_UPLOAD_BYTES})")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="the tar's SHA-256 (hex)")


class PackUploadChunk(Model):
    """The next bytes of an upload: `offset` is the bytes the node has received so far."""

    offset: int = Field(ge=0)
    data: str = Field(min_length=1, max_length=MAX_CHUNK_B64, description="base64")


class PackUpload(Model):
    id: str = Field(pattern=UPLOAD_ID)
    size: int
    received: int = Field(description="bytes received so far (the next chunk's offset)")


class PackStep(Model):
    """One progress report of a build (formation/pack/build BuildProgress)."""

    step: int = Field(ge=0, description="1-based; 0 = preparing the base")
    total: int = Field(ge=0)
    line: int | None = Field(None, description="the Formfile line of this step")
    label: str = Field(description='e.g. "INSTALL curl", "base debian:bookworm", "disk image"')
    fraction: float = Field(ge=0, le=1, description="of the whole build")
    cached: bool = Field(False, description="this step came from the layer cache")
    message: str = Field("", description="the step's last line of output")


class PackResources(Model):
    """What the Formfile asks of an instance (`pack ship` creates it with these)."""

    vcpus: int = 1
    memory_mb: int = 512
    disk_gb: int | None = None
    gpus: int = 0
    ports: list[str] = Field(default_factory=list, description="EXPOSE, as 80/tcp")


class PackBuild(Model):
    id: str = Field(pattern=BUILD_ID)
    name: str = Field(description="the image's name")
    formfile_name: str = Field(description="the Formfile's NAME")
    state: BuildState
    position: int | None = Field(None, description="while queued: builds ahead of it")
    queued_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: PackStep | None = Field(None, description="the latest report")
    steps: list[PackStep] = Field(default_factory=list,
                                  description="the latest report of each step seen, in order")
    error: str = Field("", description="why it failed, one line (the Formfile line first)")
    error_line: int | None = Field(None, description="the Formfile line that failed")
    context_digest: str | None = None
    image: str | None = Field(None, description="the image's digest, when done")
    reused: bool = Field(False, description="done without building: an image of the same "
                         "context digest existed")
    resources: PackResources = Field(default_factory=PackResources)


class PackBuildList(Model):
    builds: list[PackBuild] = Field(description="newest first")
