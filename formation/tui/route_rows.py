"""The routes screen's rows: one per route, its backends with their health as this node's edge
last checked them (up / DOWN; nothing when this node is no edge). Pure, so a unit test reads it."""

from __future__ import annotations

from formation.api.route_models import RouteInfo, RouteList

COLUMNS = ("host", "proto", "port", "account", "backends")


def _backend(b: object) -> str:
    name, address, healthy = (getattr(b, "name", "?"), getattr(b, "address", None),
                              getattr(b, "healthy", None))
    mark = "" if healthy is None else " up" if healthy else " DOWN"
    return f"{name}@{address or 'not running'}{mark}"


def route_row(route: RouteInfo) -> tuple[str, ...]:
    host = route.host + (f":{route.listen}" if route.listen else "")
    backends = ", ".join(_backend(b) for b in route.backends) or "no instance serves it yet"
    if route.conflict:
        backends += f" ({route.conflict})"
    return (host, route.protocol, str(route.port), route.account or "network", backends)


def route_rows(routes: RouteList | None) -> list[tuple[str, ...]]:
    return [route_row(r) for r in routes.routes] if routes is not None else []


def routes_state_text(routes: RouteList | None, error: str | None) -> str:
    if routes is None:
        return f"cannot read the routes: {error}" if error else "reading the routes…"
    if not routes.routes:
        return "no routes: `formation route add HOST --to INSTANCE` makes one"
    down = sum(b.healthy is False for r in routes.routes for b in r.backends)
    return (f"{len(routes.routes)} route(s)"
            + (f" · {down} backend(s) failing health checks" if down else "")
            + " · health as this node's edge sees it")
