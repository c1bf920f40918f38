"""Models of the endpoints the console needs from a node beyond its status: host metric samples,
the recent log records, and the few settings an operator edits from the console."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, WithJsonSchema

from formation.api.models import Model

# The formats the node's settings validation enforces (formation.config.settings), stated in the
# API document so clients and generated requests know them; the node still checks, and names
# the offending field in words.
PORT = r"([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
HostPortText = Annotated[str, WithJsonSchema(
    {"type": "string", "pattern": rf"^.+:{PORT}$", "description": "HOST:PORT"})]
SshKeyText = Annotated[str, WithJsonSchema({
    "type": "string", "description": "an OpenSSH public key line",
    "pattern": r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|"
               r"sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) "
               r"[A-Za-z0-9+/]+={0,3}( [^\n]*)?$"})]
HostnameText = Annotated[str, WithJsonSchema(
    {"type": "string", "pattern": r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"})]


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
