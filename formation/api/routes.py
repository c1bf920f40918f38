"""Every endpoint, once: method, path, models and whether it mutates. The server binds a handler
to each by name, the client calls them by object, and the OpenAPI document is generated here.
Parts of the node define their endpoints in their own module (e.g. `state_routes`); this module
gathers them into ENDPOINTS."""

from __future__ import annotations

from typing import Any

from formation.api import (
    account_invite_routes,
    account_routes,
    ca_routes,
    console_routes,
    discovery_routes,
    grant_routes,
    join_routes,
    p2p_routes,
    route_routes,
    ssh_routes,
    tenant_blob_routes,
    vm_routes,
)
from formation.api import models as m
from formation.api.caller import Audience as A
from formation.api.endpoint import Endpoint
from formation.api.host_routes import HOST_ENDPOINTS
from formation.api.mesh_routes import MESH_ENDPOINTS
from formation.api.pack_routes import PACK_ENDPOINTS
from formation.api.state_routes import STATE_ENDPOINTS
from formation.api.vm_routes import IMAGE_ENDPOINTS

health = Endpoint(
    "health", "GET", "/v1/health", m.Empty, m.Health,
    "Is the node service up, and are its parts healthy",
    audience=A.PUBLIC,
)
node_status = Endpoint(
    "node_status", "GET", "/v1/node", m.Empty, m.NodeStatus,
    "This node: identity, version, uptime, capabilities, resources",
    audience=A.MEMBER,
)
get_config = Endpoint(
    "get_config", "GET", "/v1/config", m.Empty, m.ConfigView,
    "The running configuration, without secrets",
    audience=A.LOCAL,
)
get_capabilities = Endpoint(
    "get_capabilities", "GET", "/v1/capabilities", m.Empty, m.Capabilities,
    "What this host can really do, each 'no' with its reason",
    audience=A.MEMBER,
)
probe_capabilities = Endpoint(
    "probe_capabilities", "POST", "/v1/capabilities/probe", m.ProbeRequest, m.Capabilities,
    "Probe the host again (boots a tiny guest to test KVM) and return the result",
    audience=A.LOCAL,
)
events = Endpoint(
    "events", "GET", "/v1/events", m.Empty, m.Event,
    "Server-sent events: every change the node publishes", query=m.EventsQuery, stream=True,
    audience=A.MEMBER,
)

VM_ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (
    vm_routes.vm_list, vm_routes.vm_show, vm_routes.vm_create, vm_routes.vm_start,
    vm_routes.vm_stop, vm_routes.vm_restart, vm_routes.vm_resize, vm_routes.vm_delete,
    vm_routes.vm_serial, vm_routes.vm_migrate, vm_routes.node_drain,
)

ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (
    health,
    node_status,
    get_config,
    get_capabilities,
    probe_capabilities,
    events,
    *discovery_routes.ENDPOINTS,
    *p2p_routes.ENDPOINTS,
    *STATE_ENDPOINTS,
    *MESH_ENDPOINTS,
    *console_routes.ENDPOINTS,
    *join_routes.ENDPOINTS,
    *ssh_routes.ENDPOINTS,
    *HOST_ENDPOINTS,
    *IMAGE_ENDPOINTS,
    *VM_ENDPOINTS,
    *account_routes.ENDPOINTS,
    *account_invite_routes.ENDPOINTS,
    *tenant_blob_routes.ENDPOINTS,
    *grant_routes.ENDPOINTS,
    *PACK_ENDPOINTS,
    *route_routes.ENDPOINTS,
    *ca_routes.ENDPOINTS,
)

# Served outside the typed endpoints (not JSON): listed in the OpenAPI document all the same.
OPENAPI_PATH = "/openapi.json"
METRICS_PATH = "/metrics"
metrics = Endpoint(
    "metrics", "GET", METRICS_PATH, m.Empty, m.MetricsText,
    "Metrics in Prometheus text format (the handler answers with rendered text)",
    audience=A.PUBLIC,
)
PUBLIC_PATHS = frozenset({OPENAPI_PATH, METRICS_PATH}) | {e.path for e in ENDPOINTS if e.public}
# The join door: routes any valid signature may call, where an outsider can guess (throttled).
SIGNED_BY_ANY_KEY = frozenset(e.path for e in ENDPOINTS if e.audience is A.ANY_KEY)
