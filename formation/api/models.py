"""Request and response models: the only vocabulary the console and the node share.

The model modules (here, *_models.py, config/settings.py) leave out `from __future__ import
annotations` on purpose: pydantic would otherwise compile every string annotation again at import,
on the node's way to READY."""


from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    """Every API model. Validators and serializers are built on a model's first use, not at
    import: the node imports all of them but a boot (under emulation, in the appliance) needs
    few, and building ~80 at import was a large share of the time to READY."""

    model_config = ConfigDict(extra="forbid", defer_build=True)


class Empty(Model):
    """A request or response without fields."""


class MetricsText(Model):
    """Stands for GET /metrics' answer, which is Prometheus text, not JSON: its handler returns
    `Rendered[MetricsText]` with that content type."""


class FieldError(Model):
    field: str
    message: str


class ErrorBody(Model):
    error: str = Field(description="machine-readable code, e.g. unauthorized, invalid_request")
    message: str = Field(description="one line for a person")
    fields: list[FieldError] = Field(default_factory=list)


class Capability(Model):
    name: str
    ok: bool | None = Field(description="true/false, or null while still being probed")
    summary: str = Field("", description="what was found, e.g. a version")
    reason: str = Field("", description="why not, when ok is false")


WireGuardKind = Literal["kernel", "wireguard-go", "none", "unknown"]
VmmKind = Literal["cloud-hypervisor", "qemu-kvm", "qemu-tcg", "none", "unknown"]


class Capabilities(Model):
    probed_at: datetime | None = None
    wireguard_backend: WireGuardKind = "unknown"
    vmm_backend: VmmKind = "unknown"
    items: list[Capability] = Field(default_factory=list)

    def get(self, name: str) -> Capability | None:
        return next((item for item in self.items if item.name == name), None)


class Resources(Model):
    cpus: int
    memory_total_mb: int
    memory_available_mb: int
    disk_total_gb: float
    disk_free_gb: float
    load_1m: float


class IdentityInfo(Model):
    node_id: str
    public_key: str = Field(description="Ed25519 public key, hex")
    fingerprint: str
    wireguard_public_key: str = Field(description="X25519 public key, base64")


class NodeStatus(Model):
    identity: IdentityInfo
    name: str
    version: str
    started_at: datetime
    uptime_s: float
    listen: list[str] = Field(description="where the API is served")
    capabilities: Capabilities
    resources: Resources


class HealthCheck(Model):
    name: str
    ok: bool
    detail: str = ""


class Health(Model):
    status: Literal["ok", "degraded"]
    checks: list[HealthCheck]


class ConfigView(Model):
    """The running configuration with nothing secret in it (the key file is never shown)."""

    config_file: str | None
    settings: dict[str, Any]


CapabilityName = Literal[
    "kvm", "qemu", "cloud_hypervisor", "wireguard", "wg_tools", "ip_forwarding", "cpus", "memory",
    "disk",
]
VMM_CAPABILITIES: frozenset[str] = frozenset({"kvm", "qemu", "cloud_hypervisor"})


class ProbeRequest(Model):
    only: list[CapabilityName] | None = Field(
        None, description="capabilities that must be probed again; null for all. Cheap facts are "
        "always re-read; the slow VMM probe (a test boot) runs only if kvm, qemu or "
        "cloud_hypervisor is named.",
    )


class Event(Model):
    seq: int = Field(description="increasing per node; resume with ?since=SEQ")
    time: datetime
    topic: str = Field(description="e.g. node, capabilities, state")
    kind: str
    data: dict[str, Any] = Field(default_factory=dict)


class EventsQuery(Model):
    since: int | None = Field(None, ge=0, description="replay buffered events after this seq")
    topic: str | None = Field(None, max_length=64, description="only events of this topic")
