"""Models of the endpoints the console needs from a node beyond its status: host metric samples,
the recent log records, and the few settings an operator edits from the console."""


from datetime import datetime
from typing import Annotated, Any

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


class EditableSettings(Model):
    """The settings the console edits: as in the config file, and as the node runs now."""

    config_file: str | None
    name: str
    bootstrap: list[str]
    admin_ssh_keys: list[str]
    running: dict[str, Any] = Field(description="the same keys as the running node has them")
    restart_required: bool = Field(description="the file differs from what the node runs")


class SettingsUpdate(Model):
    """Only the fields given are changed; the whole file is validated before it is written."""

    name: HostnameText | None = Field(None, description="the node's hostname")
    bootstrap: list[HostPortText] | None = Field(
        None, description="HOST:PORT of nodes to join through")
    admin_ssh_keys: list[SshKeyText] | None = Field(None, description="OpenSSH public key lines")
