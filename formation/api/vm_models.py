"""Models of the VM endpoints (formation/node/vmm): instances, their lifecycle, serial output,
and workload images. The limits here are the network's (docs/protocol.md "Instances"); the
state store's rules check the same figures on every op (node/state/instance_spec.py)."""


from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import Field, WithJsonSchema, field_validator

from formation.api.models import Model

HEX_ID = r"^[0-9a-f]{64}$"
# An instance is named by its id (64 hex), a unique prefix of it (6+ hex), or its name.
INSTANCE_REF = r"^[a-z0-9][a-z0-9-]{0,62}$"
NAME = r"^[a-z][a-z0-9-]{0,62}$"

VCPUS = (1, 128)
MEMORY_MB = (512, 256 * 1024)
DISK_GB = (5, 65_535)

InstanceState = Literal["pending", "placed", "booting", "running", "stopping", "stopped",
                        "failed"]
Desired = Literal["running", "stopped"]
Confidential = Literal["none", "sev-snp", "tdx"]
Replicate = Literal["restart", "never"]


# The schema states exactly what is accepted (1-65535 in the pattern itself); the validator
# below gives the one-line message.
Port = Annotated[str, WithJsonSchema({"type": "string", "pattern": (
    r"^([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
    r"/(tcp|udp)$")})]


class VmCreate(Model):
    image: str = Field(min_length=1, max_length=128,
                       description="an image's name or digest (64 hex, or a unique prefix)")
    name: str | None = Field(None, pattern=NAME,
                             description="unique in the network; default: from the image's name")
    vcpus: int = Field(1, ge=VCPUS[0], le=VCPUS[1])
    memory_mb: int = Field(512, ge=MEMORY_MB[0], le=MEMORY_MB[1], description="MiB")
    disk_gb: int = Field(5, ge=DISK_GB[0], le=DISK_GB[1], description="the instance's disk, GB")
    gpus: int = Field(0, ge=0, le=16, description="GPUs passed through with VFIO")
    confidential: Confidential = Field("none", description="SEV-SNP or TDX, where a host has it")
    node: str | None = Field(None, max_length=64,
                             description="pin to this node (name or key); default: placed by rule")
    cmdline: str | None = Field(None, max_length=1024,
                                description="kernel command line; default: the image's")
    egress: bool = Field(False, description="may reach beyond the network (NAT through its "
                         "host); default: only other instances and nodes of the network")
    ports: list[Port] = Field(default_factory=list, max_length=16,
                             description="ports it serves, like 80/tcp (DNS: SRV records)")
    replicate: Replicate | None = Field(
        None, description="when its host is lost: restart elsewhere, or never (stay failed, "
        "reason host lost); default: restart without a disk image, never with one")
    desired: Desired = "running"

    @field_validator("ports")
    @classmethod
    def _ports(cls, ports: list[str]) -> list[str]:
        for port in ports:
            number, _, proto = port.partition("/")
            if proto not in ("tcp", "udp") or not number.isdigit() or \
                    not 1 <= int(number) <= 65535:
                raise ValueError(f"{port!r}: expected PORT/tcp or PORT/udp, PORT 1-65535")
        return ports


class VmResize(Model):
    vcpus: int | None = Field(None, ge=VCPUS[0], le=VCPUS[1])
    memory_mb: int | None = Field(None, ge=MEMORY_MB[0], le=MEMORY_MB[1])


class VmStop(Model):
    force: bool = Field(False, description="end the VM at once instead of asking the guest")


class StatusChange(Model):
    time: datetime
    state: InstanceState
    reason: str = ""
    node: str | None = Field(None, description="the node that observed it (key)")


class Instance(Model):
    id: str
    name: str
    owner: str = Field(description="key of the node that created it")
    account: str | None = Field(None, description="the account that owns it; none: the node "
                                "`owner` wrote it for the network (node-owned work)")
    image: str = Field(description="the image's digest")
    image_name: str | None = None
    vcpus: int
    memory_mb: int
    disk_gb: int
    gpus: int = 0
    confidential: Confidential = "none"
    desired: Desired
    state: InstanceState
    reason: str = Field("", description="why it is pending, failed or not as desired")
    node: str | None = Field(None, description="key of the node it is placed on")
    node_name: str | None = None
    backend: str | None = Field(None, description="the VMM running it: cloud-hypervisor, qemu")
    since: datetime | None = Field(None, description="when it entered its state")
    address: str | None = Field(None, description="its IP address in the network (VM network)")
    uptime_s: float | None = Field(None, description="seconds running, while running")
    serial_tail: list[str] = Field(default_factory=list,
                                   description="last lines of serial output (when failed)")


class InstanceList(Model):
    instances: list[Instance]


class InstanceDetail(Model):
    instance: Instance
    history: list[StatusChange] = Field(default_factory=list, description="oldest first")


class SerialQuery(Model):
    offset: int | None = Field(None, ge=0, description="byte offset to start at; default: tail")
    tail_bytes: int = Field(16384, ge=0, le=1 << 20,
                            description="without offset: this many bytes before the end")
    follow: bool = Field(False, description="keep streaming as the guest writes")


class SerialChunk(Model):
    offset: int = Field(description="byte offset of `text` in the serial log")
    text: str = Field(description="serial output, decoded as UTF-8 with replacement")


class ImagePart(Model):
    digest: str = Field(pattern=HEX_ID)
    size: int


class Image(Model):
    digest: str = Field(pattern=HEX_ID, description="SHA-256 of the image's manifest")
    name: str
    size: int = Field(description="bytes of all its parts")
    parts: dict[Literal["kernel", "initrd", "disk"], ImagePart]
    cmdline: str = ""
    added_by: str
    local: bool = Field(description="every part is in this node's image store, verified")


class ImageList(Model):
    images: list[Image]


class ImageBlob(Model):
    """Stands for GET /v1/images/blobs/{digest}'s answer, the blob's raw bytes
    (application/octet-stream), not JSON: its handler returns `Rendered[ImageBlob]` with a
    file."""

    MEDIA_TYPE: ClassVar[str] = "application/octet-stream"  # what the OpenAPI document says


class ImageImport(Model):
    """Import files already on this node's disk (local callers only)."""

    name: str = Field(pattern=NAME)
    kernel: str = Field(description="path to the kernel (bzImage/vmlinuz)")
    initrd: str | None = None
    disk: str | None = Field(None, description="path to a raw root disk")
    cmdline: str = Field("console=ttyS0", max_length=2048)


MoveMode = Literal["live", "restart"]


class VmMigrate(Model):
    to: str = Field(..., min_length=1, max_length=64,
                    description="the target node: its name, key or a unique key prefix")
    restart: bool = Field(False, description="stop it here and start it there instead of "
                          "moving it live (its memory is lost; its address is kept)")


class NodeDrain(Model):
    restart: bool = Field(False, description="instances that cannot move live are stopped "
                          "and started elsewhere instead of refusing the drain")


class Move(Model):
    instance: str
    name: str
    to: str = Field(..., description="the target node's key")
    to_name: str
    mode: MoveMode


class DrainResult(Model):
    node: str
    moves: list[Move]
