"""The mesh's part of the API vocabulary: the WireGuard interface and its peers as observed."""


from datetime import datetime

from pydantic import Field

from formation.api.models import Model


class MeshPeer(Model):
    public_key: str = Field(description="the peer's WireGuard public key, base64")
    node_id: str | None = Field(None, description="the node this key belongs to, when known")
    endpoint: str | None = Field(None, description="underlay IP:PORT in use, null if none yet")
    allowed_ips: list[str] = Field(default_factory=list)
    latest_handshake: datetime | None = Field(None, description="null: never")
    handshake_age_s: float | None = Field(None, description="seconds since the last handshake")
    rx_bytes: int = 0
    tx_bytes: int = 0
    persistent_keepalive_s: int = 0


class MeshStatus(Model):
    enabled: bool = Field(description="mesh.enabled in the settings")
    interface: str
    backend: str | None = Field(None, description="kernel or wireguard-go")
    up: bool = Field(False, description="the interface exists and answers")
    public_key: str | None = None
    listen_port: int | None = None
    address: str | None = Field(None, description="this node's mesh address")
    restarts: int = Field(0, description="times wireguard-go died and was restarted")
    error: str = Field("", description="why the interface is not up, when it is not")
    peers: list[MeshPeer] = Field(default_factory=list)
