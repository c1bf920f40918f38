"""The typed settings. Unknown keys are errors: a misspelt key silently ignored is a node
misconfigured without anyone knowing."""

from __future__ import annotations

import ipaddress
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


HostPort = Annotated[str, AfterValidator(_host_port)]
PublicKeyHex = Annotated[str, AfterValidator(_public_key_hex)]
Hostname = Annotated[str, AfterValidator(_hostname)]


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


def _interface_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", value):
        raise ValueError("expected a network interface name: 1-15 letters, digits, '_', '.', '-'")
    return value


def _ip_interface(value: str) -> str:
    try:
        ipaddress.ip_interface(value)
    except ValueError:
        raise ValueError("expected an address with prefix, e.g. 10.88.0.5/16") from None
    if "/" not in value:
        raise ValueError("expected an address with prefix, e.g. 10.88.0.5/16")
    return value


def _ip_network(value: str) -> str:
    try:
        ipaddress.ip_network(value)
    except ValueError as exc:
        raise ValueError(f"expected a network CIDR, e.g. 10.88.0.0/16 ({exc})") from None
    return value


def _ip_address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError("expected an IP address") from None
    return value


def _ip_port(value: str) -> str:
    host, _, _ = _host_port(value).rpartition(":")
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise ValueError("expected IP:PORT (an address, not a name), e.g. 9.9.9.9:53") from None
    return value


InterfaceName = Annotated[str, AfterValidator(_interface_name)]
IpPort = Annotated[str, AfterValidator(_ip_port)]
IpInterface = Annotated[str, AfterValidator(_ip_interface)]
IpNetwork = Annotated[str, AfterValidator(_ip_network)]
IpAddress = Annotated[str, AfterValidator(_ip_address)]


class MeshSettings(Strict):
    enabled: bool = Field(False, description="create the WireGuard mesh interface at start")
    interface: InterfaceName = "formnet0"
    listen_port: int = Field(51820, ge=0, le=65535, description="WireGuard UDP port; 0: any")
    backend: Literal["auto", "kernel", "wireguard-go"] = Field(
        "auto", description="auto: what the capability probe finds (kernel, else wireguard-go)")
    wireguard_go_binary: str = "wireguard-go"
    network: IpNetwork = Field("10.88.0.0/16", description="the network's CIDR")
    vm_prefix: int = Field(24, ge=8, le=30, description="size of each node's VM subnet")
    address: IpInterface | None = Field(
        None, description="this node's mesh address with the network's prefix; until the state "
        "store allocates it, set here")
    persistent_keepalive_s: int = Field(25, ge=0, le=65535)
    status_interval_s: float = Field(10.0, gt=0, le=3600, description="status event period")


class DnsSettings(Strict):
    enabled: bool = Field(False, description="serve <name>.<network>.fog")
    listen: list[IpAddress] = Field(
        default_factory=list, description="addresses to answer on; empty: the mesh address")
    port: int = Field(53, ge=0, le=65535)
    zone: Hostname = Field("fog", description="the top-level name the node answers for")
    upstreams: list[IpPort] = Field(
        default_factory=list, description="forward other names here; empty: refuse them")
    ttl_s: int = Field(30, ge=0, le=86400)


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
    headless: bool = False
    mesh: MeshSettings = Field(default_factory=MeshSettings)
    dns: DnsSettings = Field(default_factory=DnsSettings)
