"""What discovery shows: the hosts this node found (mDNS, bootstrap lists, peers' heartbeats)."""


from datetime import datetime
from typing import Literal

from pydantic import Field

from formation.api.models import Model

UNENROLLED = "unenrolled"
PeerSource = Literal["mdns", "bootstrap", "gossip", "state"]  # how a host was found
PeerKind = Literal["peer", "unenrolled", "foreign"]  # its network, seen from this node's


class Hello(Model):
    """A node's public self-description: the same facts its mDNS TXT record carries."""

    node_id: str
    name: str
    public_key: str = Field(description="Ed25519 public key, hex")
    network: str = Field(description=f"network id, or '{UNENROLLED}'")
    api_port: int
    version: str


class DiscoveredPeer(Model):
    node_id: str
    name: str = ""
    public_key: str
    network: str
    address: str = Field(description="HOST:PORT of its node API")
    version: str = ""
    sources: list[PeerSource] = Field(
        description="how it was found; mdns is not a liveness signal"
    )
    kind: PeerKind = Field(
        description="peer: same network as this node; unenrolled: a host waiting to join; "
        "foreign: another network"
    )
    trusted: bool = Field(description="its key may sign requests to this node")
    first_seen: datetime
    last_seen: datetime


class DiscoveredPeers(Model):
    network: str = Field(description=f"this node's network id, or '{UNENROLLED}'")
    mdns: str = Field(description="what mDNS does here, e.g. 'on 10.77.0.11' or why it is off")
    peers: list[DiscoveredPeer]
