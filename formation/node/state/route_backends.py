"""From the routes view and the instances view to what the edge serves: pure functions, so the
edge re-applies whenever either view changes and an instance that moves (a new placement
reporting a new address) is followed without a manual step.

A route's instances are those it names (still there) or, for a prefix, those whose name starts
with it - the route's account's own only (a network route's: any). An instance serves while its
current placement reports it running with an address, and while its current spec still exposes
the route's port (a spec without `ports` says nothing, so it serves). Backends on an address no
instance may have (loopback, link-local, multicast, unspecified) are left out: a hostile node
could report one to turn the edge on its own host."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from typing import Any

from formation.node.edge.routes import Backend, Route
from formation.node.state.instance_view import current_observed

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def serving(route: dict[str, Any], instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The instance records the route names or whose names carry its prefix, by name."""
    if "instances" in route:
        wanted = set(route["instances"])
        found = [i for i in instances if i.get("key") in wanted]
    else:
        prefix, account = str(route.get("prefix")), route.get("account")
        found = [i for i in instances if str(i.get("name", "")).startswith(prefix)
                 and (account is None or i.get("account") == account)]
    want = f"{route.get('port')}/tcp"
    return sorted((i for i in found if _exposes(i, want) and i.get("desired") != "deleted"
                   and not i.get("over_quota")), key=lambda i: (str(i.get("name")), i["key"]))


def _exposes(instance: dict[str, Any], want: str) -> bool:
    spec = instance.get("spec")
    ports = spec.get("ports") if isinstance(spec, dict) else None
    return not isinstance(ports, list) or want in ports


def address(instance: dict[str, Any]) -> str | None:
    """The address the instance's current placement reports while running, if an instance
    may have it."""
    observed = current_observed(instance)
    if observed.get("state") != "running":
        return None
    text = observed.get("address")
    if not isinstance(text, str):
        return None
    try:
        ip = ipaddress.ip_address(text)
    except (TypeError, ValueError):
        return None
    if ip.is_loopback or ip.is_unspecified or ip.is_link_local or ip.is_multicast:
        return None
    return str(ip)


def route_name(route: dict[str, Any]) -> str:
    """A Caddy @id and metric label: readable from the hostname, unique per slot."""
    host = str(route.get("key"))
    protocol = str(route.get("protocol"))
    tail = f"_{protocol}" + (str(route.get("listen")) if protocol == "tcp" else "")
    base = host.replace("*", "wild").replace(".", "_")
    name = base + tail
    if len(name) > 63 or not _NAME.match(name):
        digest = hashlib.sha256(host.encode()).hexdigest()[:8]
        name = f"{base[:40]}-{digest}{tail}"
    return name


def edge_routes(routes: list[dict[str, Any]], instances: list[dict[str, Any]]) -> list[Route]:
    """The routes view as the edge serves it. A route whose instances serve nothing yet stays
    (the edge says so rather than letting the name fall to another route); one in `conflict`
    is left out."""
    out: list[Route] = []
    for route in routes:
        if route.get("conflict"):
            continue
        port = int(route["port"])
        addresses = {a for a in (address(i) for i in serving(route, instances)) if a}
        backends = tuple(Backend(a, port) for a in sorted(addresses))
        protocol = route["protocol"]
        out.append(Route(host=str(route["key"]), protocol=protocol,
                         port=int(route["listen"]) if protocol == "tcp" else None,
                         backends=backends, name=route_name(route)))
    return out
