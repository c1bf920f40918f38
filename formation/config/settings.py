"""The typed settings. Unknown keys are errors: a misspelt key silently ignored is a node
misconfigured without anyone knowing."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from formation.config import paths

_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError("expected HOST:PORT with a port from 0 to 65535")
    return value


def _public_key_hex(value: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise ValueError("expected an Ed25519 public key as 64 lowercase hex characters")
    return value


def _hostname(value: str) -> str:
    if not _HOSTNAME.match(value):
        raise ValueError("expected a hostname: lowercase letters, digits and '-', at most 63")
    return value


_SSH_KEY = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|"
    r"sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n]*)?$"
)


def _ssh_public_key(value: str) -> str:
    if not _SSH_KEY.match(value.strip()):
        raise ValueError("expected an OpenSSH public key line, e.g. 'ssh-ed25519 AAAA... name'")
    return value.strip()


HostPort = Annotated[str, AfterValidator(_host_port)]
PublicKeyHex = Annotated[str, AfterValidator(_public_key_hex)]
Hostname = Annotated[str, AfterValidator(_hostname)]
SshPublicKey = Annotated[str, AfterValidator(_ssh_public_key)]


def _default_name() -> str:
    name = socket.gethostname().split(".")[0].lower()
    return name if _HOSTNAME.match(name) else "formation"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiSettings(Strict):
    socket: Path = Field(default_factory=paths.default_socket, description="unix socket path")
    socket_mode: int = Field(0o660, ge=0, le=0o777, description="permissions of the socket")
    listen: HostPort | None = Field(None, description="TCP HOST:PORT for other nodes")
    clock_skew_s: float = Field(60.0, gt=0, le=3600, description="accepted signature age")


class LogSettings(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


class ProbeSettings(Strict):
    boot_test: bool = Field(True, description="boot a tiny guest to prove KVM really runs")
    kvm_boot_timeout_s: float = Field(6.0, gt=0, le=120)
    qemu_binary: str = "qemu-system-x86_64"
    cloud_hypervisor_binary: str = "cloud-hypervisor"


class NodeSettings(Strict):
    name: Hostname = Field(default_factory=_default_name)
    data_dir: Path = Field(default_factory=paths.default_data_dir)
    api: ApiSettings = Field(default_factory=ApiSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    probe: ProbeSettings = Field(default_factory=ProbeSettings)
    trusted_keys: list[PublicKeyHex] = Field(
        default_factory=list,
        description="public keys allowed to sign requests before the state store decides",
    )
    bootstrap: list[HostPort] = Field(default_factory=list)
    admin_ssh_keys: list[SshPublicKey] = Field(
        default_factory=list,
        description="keys that get the console over SSH (later: the replicated admin list)",
    )
    headless: bool = False
