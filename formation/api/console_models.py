"""Models of the endpoints the console needs from a node beyond its status: host metric samples,
the recent log records, and the few settings an operator edits from the console."""


from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from formation.api.models import Model
from formation.config.settings import HOST_PORT_PATTERN, HOSTNAME_PATTERN, SSH_KEY_PATTERN


def _documented(pattern: str) -> WithJsonSchema:
    """The schema states the rule; the node checks it with the settings model, whose errors name
    the field in words (and a client may send what the node then explains)."""
    return WithJsonSchema({"type": "string", "pattern": pattern})


HostnameText = Annotated[str, _documented(HOSTNAME_PATTERN)]
HostPortText = Annotated[str, _documented(HOST_PORT_PATTERN)]
SshKeyText = Annotated[str, _documented(SSH_KEY_PATTERN)]


class HostSample(Model):
    """One sample of the host, taken every second by the node."""

    time: datetime
    cpu_percent: float = Field(description="busy share of all CPUs since the previous sample")
    memory_used_percent: float
    net_rx_bps: float = Field(description="bytes/s received on all interfaces but loopback")
    net_tx_bps: float


class HostSamples(Model):
    interval_s: float
    samples: list[HostSample] = Field(description="oldest first, at most a few minutes")


class LogRecord(Model):
    seq: int = Field(description="increasing per node; ask for newer ones with ?since=SEQ")
    time: datetime
    level: str
    logger: str
    message: str
    fields: dict[str, Any] = Field(default_factory=dict)


class LogRecords(Model):
    records: list[LogRecord] = Field(description="oldest first")
    dropped: int = Field(0, description="records that fell out of the bounded ring")


class LogsQuery(Model):
    since: int | None = Field(None, ge=0, description="only records after this seq")
    limit: int = Field(200, ge=1, le=1000)


class UnderlayChoice(Model):
    """The underlay interface and how it gets its address. The node checks the combination
    (static needs an address; a gateway inside its network) and says which field is wrong."""

    interface: str | None = Field(None, description="e.g. eth0; none: the image's default DHCP")
    mode: Literal["dhcp", "static"] = "dhcp"
    address: str | None = Field(None, description="static: address/prefix, e.g. 10.0.0.5/24")
    gateway: str | None = Field(None, description="static: the default gateway")
    dns: list[str] = Field(default_factory=list, description="DNS server addresses")


class ResourceChoice(Model):
    """What the node offers to the network's instances; none: all the host has. At most the
    host's totals."""

    cpus: int | None = Field(None, ge=1, le=4096, description="CPUs offered")
    memory_mb: int | None = Field(None, ge=64, description="memory offered, MiB")
    disk_gb: int | None = Field(None, ge=1, description="disk offered, GB")
    gpus: list[str] | None = Field(
        None, description="PCI addresses of the GPUs offered; none: every GPU found")


class EditableSettings(Model):
    """The settings the console edits: as in the config file, and as the node runs now."""

    config_file: str | None
    name: str
    bootstrap: list[str]
    admin_ssh_keys: list[str]
    underlay: UnderlayChoice = Field(default_factory=UnderlayChoice)
    resources: ResourceChoice = Field(default_factory=ResourceChoice)
    running: dict[str, Any] = Field(description="the same keys as the running node has them")
    restart_required: bool = Field(description="the file differs from what the node runs")
    applied: list[str] = Field(
        default_factory=list, description="what this save applied at once, in words (the "
        "underlay's networkd file; resources offered in the node record)")


class SettingsUpdate(Model):
    """Only the fields given are changed; the whole file is validated before it is written."""

    name: HostnameText | None = Field(None, description="the node's hostname")
    bootstrap: list[HostPortText] | None = Field(
        None, description="HOST:PORT of nodes to join through")
    admin_ssh_keys: list[SshKeyText] | None = Field(None, description="OpenSSH public key lines")
    underlay: UnderlayChoice | None = Field(
        None, description="replaces the whole underlay section; applied at once")
    resources: ResourceChoice | None = Field(
        None, description="replaces the whole resources section; applied at once")
