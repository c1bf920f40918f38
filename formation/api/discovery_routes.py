"""Discovery's endpoints."""

from __future__ import annotations

from formation.api import discovery_models as dm
from formation.api.caller import Audience as A
from formation.api.endpoint import Endpoint
from formation.api.models import Empty

discovery_hello = Endpoint(
    "discovery_hello", "GET", "/v1/discovery/hello", Empty, dm.Hello,
    "Who this node is (public): what bootstrap contacts ask first",
    audience=A.PUBLIC,
)
discovery_peers = Endpoint(
    "discovery_peers", "GET", "/v1/discovery/peers", Empty, dm.DiscoveredPeers,
    "Hosts this node found via mDNS, bootstrap lists and peers' heartbeats",
    audience=A.MEMBER,
)

ENDPOINTS = (discovery_hello, discovery_peers)
