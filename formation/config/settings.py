"""The typed settings. Unknown keys are errors: a misspelt key silently ignored is a node
misconfigured without anyone knowing."""


import ipaddress
import re
import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from formation.config import paths

_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# The same rules as JSON-schema patterns, for API models that must say what they accept.
HOSTNAME_PATTERN = _HOSTNAME.pattern
HOST_PORT_PATTERN = (r"^.+:([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}"
                     r"|655[0-2][0-9]|6553[0-5])$")


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


def _file_mode(value: object) -> object:
    """YAML 1.1 reads 0660 as octal but leaves 0o660 a string; take both, and "660" too."""
    if isinstance(value, str):
        digits = value.strip().lower().removeprefix("0o")
        if not re.fullmatch(r"[0-7]{3,4}", digits):
            raise ValueError("expected a file mode in octal, e.g. 0o660")
        return int(digits, 8)
    return value


_SSH_KEY = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|"
    r"sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n]*)?$"
)


SSH_KEY_PATTERN = _SSH_KEY.pattern


def _ssh_public_key(value: str) -> str:
    if not _SSH_KEY.match(value.strip()):
        raise ValueError("expected an OpenSSH public key line, e.g. 'ssh-ed25519 AAAA... name'")
    return value.strip()


HostPort = Annotated[str, AfterValidator(_host_port)]
FileMode = Annotated[int, BeforeValidator(_file_mode)]
PublicKeyHex = Annotated[str, AfterValidator(_public_key_hex)]
Hostname = Annotated[str, AfterValidator(_hostname)]
SshPublicKey = Annotated[str, AfterValidator(_ssh_public_key)]


def field_named_in(loc: tuple, error_type: str, message: str) -> tuple[tuple, str]:
    """A section's cross-field rule (a model validator) names the field it is about at the start
    of its message ("address: ..."); move that name into the location, so the error points at
    the field (and a file's line at that key)."""
    field, sep, rest = message.partition(": ")
    if error_type == "value_error" and sep and re.fullmatch(r"[a-z_]+", field):
        return (*loc, field), rest
    return loc, message


def _default_name() -> str:
    name = socket.gethostname().split(".")[0].lower()
    return name if _HOSTNAME.match(name) else "formation"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ApiSettings(Strict):
    socket: Path = Field(default_factory=paths.default_socket, description="unix socket path")
    socket_mode: FileMode = Field(0o660, ge=0, le=0o777,
                                  description="permissions of the socket, octal (0o660)")
    socket_group: str | None = Field(
        None, description="group that owns the socket, so its members (the SSH console user) "
                          "may connect; `formation ssh-setup` sets it")
    listen: HostPort | None = Field(None, description="TCP HOST:PORT for other nodes")
    clock_skew_s: float = Field(60.0, gt=0, le=3600, description="accepted signature age")
    # What an anonymous client on the TCP port may hold (docs/operations.md, "Limits").
    max_connections: int = Field(
        4096, ge=1, le=1_000_000, description="TCP connections at once; lowered at start to the "
        "process's open-file limit minus reserved_fds, so the unix socket and the node's own "
        "files always find a descriptor")
    max_connections_per_peer: int = Field(
        128, ge=1, le=1_000_000, description="TCP connections at once from one peer address")
    reserved_fds: int = Field(
        256, ge=16, le=1_000_000, description="descriptors kept from TCP clients (at most a "
        "quarter of the open-file limit)")
    header_timeout_s: float = Field(
        10.0, gt=0, le=3600, description="a TCP request's headers must arrive within this long "
        "of the connection or of its first byte")
    body_timeout_s: float = Field(
        60.0, gt=0, le=3600, description="a TCP request's body must arrive within this long "
        "of its headers")
    idle_timeout_s: float = Field(
        60.0, gt=0, le=86400, description="an idle kept-alive TCP connection is closed after "
        "this long")
    join_guesses: int = Field(
        10, ge=1, le=100_000, description="failed join handshakes or knocks one address may "
        "make at once before it is answered 429; one more is allowed every join_guess_every_s")
    join_guess_every_s: float = Field(6.0, gt=0, le=86400)
    pending_joins_max: int = Field(256, ge=1, le=100_000,
                                   description="hosts waiting for approval at once")
    pending_joins_per_source: int = Field(
        8, ge=1, le=100_000, description="hosts waiting for approval from one address")
    pending_join_expiry_s: float = Field(
        3600.0, gt=0, le=30 * 86400, description="a pending join is dropped this long after "
        "its host last asked")


class LogSettings(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


class ProbeSettings(Strict):
    boot_test: bool = Field(True, description="boot a tiny guest to prove KVM really runs")
    kvm_boot_timeout_s: float = Field(6.0, gt=0, le=120)
    qemu_binary: str = "qemu-system-x86_64"
    cloud_hypervisor_binary: str = "cloud-hypervisor"


def _ipv4(value: str) -> str:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError("expected an IPv4 address such as 10.77.0.11") from None
    return value


IPv4 = Annotated[str, AfterValidator(_ipv4)]


class DiscoverySettings(Strict):
    mdns: bool = Field(True, description="advertise and browse _formation._udp.local. (IPv4)")
    addresses: list[IPv4] = Field(
        default_factory=list,
        description="underlay IPv4 addresses to advertise and browse on; empty: the host of "
        "api.listen (all IPv4 interfaces when it is 0.0.0.0; none when loopback)",
    )
    bootstrap_delay_s: float = Field(
        2.0, ge=0, le=600, description="wait this long for mDNS before trying bootstrap entries"
    )
    bootstrap_backoff_max_s: float = Field(30.0, gt=0, le=3600)


class GossipSettings(Strict):
    # 6: with push gossip a host is missed when none of the relays picks it, about
    # (1 - fanout/(N-2))^(N-1); at N=10 that is 1.5 % with fanout 3 and ~0.0004 % with 6.
    # The state store's anti-entropy repairs what is still missed.
    fanout: int = Field(6, ge=1, le=64, description="peers each message is pushed to per hop")
    max_hops: int = Field(4, ge=0, le=16, description="relays after the origin's own push")
    direct_max: int = Field(
        32, ge=0, le=1024,
        description="the origin pushes straight to every peer (no relays) while it knows at "
        "most this many; beyond that, fan-out with relays",
    )
    peer_queue: int = Field(1024, ge=8, le=1_000_000, description="envelopes queued per peer")
    inbox: int = Field(4096, ge=8, le=1_000_000, description="received envelopes awaiting work")
    batch: int = Field(64, ge=1, le=1024, description="envelopes per request to a peer")
    send_timeout_s: float = Field(2.0, gt=0, le=60)
    max_age_s: float = Field(30.0, gt=0, le=3600, description="older envelopes are dropped")


class MembershipSettings(Strict):
    heartbeat_s: float = Field(1.0, gt=0, le=60, description="interval between heartbeats")
    suspect_after_s: float = Field(2.0, gt=0, le=600, description="silence before suspect")
    # 2.5 s, not 3: a kill just after a heartbeat is seen dead 2.5 s (+ one aging tick) later,
    # which keeps detection within the 3 s target wherever the kill falls.
    dead_after_s: float = Field(2.5, gt=0, le=3600, description="silence before dead")

    @model_validator(mode="after")
    def _ordered(self) -> "MembershipSettings":
        if not self.heartbeat_s < self.suspect_after_s <= self.dead_after_s:
            raise ValueError("expected heartbeat_s < suspect_after_s <= dead_after_s")
        return self


def _peer(value: str) -> str:
    key, _, address = value.rpartition("@")
    if key:
        _public_key_hex(key)
    _host_port(address)
    return value


def _network_id(value: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{32}", value):
        raise ValueError("expected a network id as 32 lowercase hex characters")
    return value


class StateSettings(Strict):
    peers: list[Annotated[str, AfterValidator(_peer)]] = Field(
        default_factory=list,
        description="nodes to replicate with, HOST:PORT or KEYHEX@HOST:PORT (until joining "
        "exists); a KEYHEX is trusted to sign requests",
    )
    network: Annotated[str, AfterValidator(_network_id)] | None = Field(
        None, description="the only network this replica accepts; unset: the first genesis "
        "received from a peer (or founded here)",
    )
    anti_entropy_interval_s: float = Field(5.0, gt=0, le=3600)
    claim_address: bool = Field(True, description="claim a mesh address from the network's "
                                "CIDR when a member without one")
    buffer_max_ops: int = Field(20_000, ge=100, le=1_000_000)
    buffer_max_mb: int = Field(64, ge=1, le=4096)


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
    endpoints: list[IpPort] = Field(
        default_factory=list, description="underlay IP:PORT where peers reach this node's "
        "WireGuard; empty: the hosts of its API endpoints with listen_port")
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
    ttl_s: int = Field(30, ge=0, le=86400, description="TTL of node names")
    instance_ttl_s: int = Field(
        2, ge=0, le=86400, description="TTL of instance names: small, since instances move")
    vm_gateway: bool = Field(
        True, description="also answer on this node's VM bridge gateway (the VMs' resolver)")


class Underlay(Strict):
    """How the host's underlay interface gets its address. The node renders it as a
    systemd-networkd file (formation.node.host_network.networkd); no interface: the image's
    default (DHCP on every wired interface) stays in charge."""

    interface: InterfaceName | None = Field(
        None, description="the underlay interface, e.g. eth0; unset: leave the host's network "
        "as the image configures it")
    mode: Literal["dhcp", "static"] = Field("dhcp", description="dhcp, or a static address")
    address: IpInterface | None = Field(None, description="static: address/prefix, e.g. "
                                        "10.0.0.5/24")
    gateway: IpAddress | None = Field(None, description="static: the default gateway")
    dns: list[IpAddress] = Field(default_factory=list, description="DNS servers (either mode)")

    @model_validator(mode="after")
    def _consistent(self) -> "Underlay":
        """Cross-field rules, each message naming the field it is about."""
        if self.interface is None and (self.mode == "static" or self.address or self.gateway
                                       or self.dns):
            raise ValueError("interface: expected the interface these addresses are for, "
                             "e.g. eth0")
        if self.mode == "static" and self.address is None:
            raise ValueError("address: a static underlay needs address/prefix, "
                             "e.g. 10.0.0.5/24")
        if self.mode == "dhcp" and (self.address or self.gateway):
            field = "address" if self.address else "gateway"
            raise ValueError(f"{field}: only for mode static (DHCP assigns it)")
        if self.address and self.gateway:
            net = ipaddress.ip_interface(self.address).network
            gateway = ipaddress.ip_address(self.gateway)
            if gateway not in net:
                raise ValueError(f"gateway: {gateway} is outside {net}, the static address's "
                                 "network")
            if gateway == ipaddress.ip_interface(self.address).ip:
                raise ValueError("gateway: expected another host than the address itself")
        return self


class UnderlaySettings(Underlay):
    networkd_dir: Path = Field(
        Path("/etc/systemd/network"),
        description="where the node writes 10-formation-underlay.network")


class ResourceOffer(Strict):
    """What this node offers to the network's instances; unset: all the host has. The node
    checks it against the host's totals when it is saved."""

    cpus: int | None = Field(None, ge=1, le=4096, description="CPUs offered")
    memory_mb: int | None = Field(None, ge=64, description="memory offered, MiB")
    disk_gb: int | None = Field(None, ge=1, description="disk offered, GB")
    gpus: list[str] | None = Field(
        None, description="PCI addresses (0000:01:00.0) of the GPUs offered; unset: every GPU "
        "found in sysfs")


class VmmSettings(Strict):
    """How this node runs the instances placed on it (formation/node/vmm)."""

    backend: Literal["auto", "cloud-hypervisor", "qemu"] = Field(
        "auto", description="auto: Cloud Hypervisor when its binary exists and KVM works, "
        "else QEMU (KVM where the probe proved guests boot, TCG otherwise)")
    run_dir: Path | None = Field(
        None, description="where each VM's sockets, disk overlay and serial log live; "
        "default: data_dir/vms")
    stop_grace_s: float = Field(
        30.0, ge=0, le=3600, description="how long a stopping guest may take to power off "
        "after the power button before it is ended")
    boot_timeout_s: float = Field(
        300.0, gt=0, le=86400, description="a booting guest that writes nothing on its serial "
        "console for this long is Failed")
    replace_after_s: float = Field(
        10.0, ge=0, le=86400, description="a member seen dead (membership) for this long more "
        "has lost its host: its instances are placed again on live nodes")
    start_sync_wait_s: float = Field(
        10.0, ge=0, le=3600, description="a (re)starting node boots nothing until it has "
        "synced with a live peer, or for this long when none answers")
    migration_ports: str = Field(
        "49152-49215", pattern=r"^[0-9]{4,5}-[0-9]{4,5}$",
        description="LOW-HIGH: the TCP ports a live migration's target listens on (one free "
        "port is chosen per migration)")
    migration_address: ipaddress.IPv4Address | None = Field(
        None, description="the address a migration's target listens on; default: this "
        "node's mesh address (tests on one host: 127.0.0.1)")
    migration_timeout_s: float = Field(
        600.0, gt=0, le=86400, description="a live migration that has not completed after "
        "this long is Failed on the target (the source keeps the VM)")

    @model_validator(mode="after")
    def _ports_range(self) -> "VmmSettings":
        low, _, high = self.migration_ports.partition("-")
        if not 1024 <= int(low) <= int(high) <= 65535:
            raise ValueError("migration_ports: expected LOW-HIGH with 1024 <= LOW <= HIGH <= "
                             "65535, e.g. 49152-49215")
        return self


# The edge's settings. ACME is settings, not code: the directory URL (Let's Encrypt in production,
# pebble in tests), the contact, and a CA root to trust for the directory's own HTTPS.
class EdgeSettings(Strict):
    enabled: bool = Field(False, description="run the proxy engine (nodes with the edge role)")
    caddy: str = Field("caddy", description="the Caddy binary (Debian's caddy 2.6)")
    run_dir: Path | None = Field(
        None, description="the engine's sockets, config and certificate storage; "
        "default: data_dir/edge")
    listen: list[IpAddress] = Field(
        default_factory=list, description="addresses the public ports are bound to; "
        "empty: every address")
    http_port: int = Field(80, ge=1, le=65535, description="public HTTP (and ACME HTTP-01)")
    https_port: int = Field(443, ge=1, le=65535, description="public HTTPS (and TLS-ALPN-01)")
    health_interval_s: float = Field(
        1.0, gt=0, le=3600, description="active health check period per backend")
    health_timeout_s: float = Field(1.0, gt=0, le=3600)
    health_path: str = Field("/", pattern=r"^/", description="HTTP path the checks GET")
    try_duration_s: float = Field(
        5.0, ge=0, le=600, description="how long a request may be retried on other backends "
        "when one refuses the connection")
    acme_directory: str | None = Field(
        None, pattern=r"^https://", description="ACME directory URL; unset: Let's Encrypt")
    acme_email: str | None = Field(None, description="ACME account contact")
    acme_ca_root: Path | None = Field(
        None, description="PEM file of a CA to trust for the ACME directory's HTTPS "
        "(pebble's test CA); unset: the system's trust store")
    route_metrics: bool = Field(
        True, description="per-route requests, errors, latency and bytes: the engine logs "
        "every request to the node (bench/rplb.py measures what it costs)")
    restart_max_s: float = Field(
        30.0, gt=0, le=3600, description="the engine's restart back-off after crashes, at most")


class PackSettings(Strict):
    """How this node builds workload images from Formfiles (formation/node/pack)."""

    cache_dir: Path | None = Field(
        None, description="the per-step layer cache and package cache of builds; default: "
        "data_dir/pack-cache")
    mirror: str = Field(
        "http://deb.debian.org/debian", pattern=r"^https?://[^\s]+$",
        description="the Debian mirror builds take packages from (and from nowhere else)")
    max_queued: int = Field(
        8, ge=1, le=1000, description="builds waiting behind the running one; more are "
        "refused (503) until one finishes")


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
    bootstrap: list[HostPort] = Field(
        default_factory=list, description="HOST:PORT of nodes to contact when mDNS finds none"
    )
    discovery: DiscoverySettings = Field(default_factory=DiscoverySettings)
    gossip: GossipSettings = Field(default_factory=GossipSettings)
    membership: MembershipSettings = Field(default_factory=MembershipSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    admin_ssh_keys: list[SshPublicKey] = Field(
        default_factory=list,
        description="keys that get the console over SSH (later: the replicated admin list)",
    )
    headless: bool = False
    mesh: MeshSettings = Field(default_factory=MeshSettings)
    dns: DnsSettings = Field(default_factory=DnsSettings)
    underlay: UnderlaySettings = Field(default_factory=UnderlaySettings)
    resources: ResourceOffer = Field(default_factory=ResourceOffer)
    vmm: VmmSettings = Field(default_factory=VmmSettings)
    edge: EdgeSettings = Field(default_factory=EdgeSettings)
    pack: PackSettings = Field(default_factory=PackSettings)
