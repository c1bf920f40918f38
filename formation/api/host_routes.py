"""Endpoints about the host's own network (what the enrollment screen offers as the underlay)."""

from __future__ import annotations

from typing import Any

from formation.api import host_models as hm
from formation.api import models as m
from formation.api.caller import Audience as A
from formation.api.endpoint import Endpoint

host_interfaces = Endpoint(
    "host_interfaces", "GET", "/v1/host/interfaces", m.Empty, hm.HostInterfaces,
    "The host's network interfaces (name, MAC, state, IPv4 addresses), loopback and the node's "
    "own mesh link marked, for choosing the underlay",
    audience=A.LOCAL,
)

HOST_ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (host_interfaces,)
