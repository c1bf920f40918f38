"""Endpoints of routes (formation/node/state/route_handlers.py). A node's operator (or an
admin's signed request) writes routes signed by the node, which must be a network admin; a
tenant writes its own through the tenant draft/relay endpoints (kind route.set, route.remove)."""

from __future__ import annotations

from typing import Any

from formation.api import route_models as rm
from formation.api.caller import Audience as A
from formation.api.endpoint import Endpoint
from formation.api.models import Empty

WRITE_ERRORS = ((403, "Not the route's or instances' account, or this node is no admin"),
                (404, "No such instance or route"), (409, "The hostname is another account's"))

route_list = Endpoint(
    "route_list", "GET", "/v1/routes", Empty, rm.RouteList,
    "Every route of the network with its backends (and their health on an edge node)",
    audience=A.MEMBER,
)
route_set = Endpoint(
    "route_set", "POST", "/v1/routes", rm.RouteSet, rm.RouteInfo,
    "Serve a hostname from instances: a route.set op signed by this node (a network admin)",
    errors=WRITE_ERRORS, audience=A.ADMIN,
)
route_remove = Endpoint(
    "route_remove", "DELETE", "/v1/routes/{host}", Empty, rm.RouteRemoved,
    "Stop serving a hostname: route.remove of each of its routes",
    path_patterns=(("host", rm.HOST),), errors=WRITE_ERRORS, audience=A.ADMIN,
)
tenant_routes = Endpoint(
    "tenant_routes", "GET", "/v1/tenant/routes", Empty, rm.RouteList,
    "The signing key's account's routes (an admin account's: every route)",
    audience=A.TENANT,
)

ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (route_list, route_set, route_remove, tenant_routes)
