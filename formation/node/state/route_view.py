"""The routes view: the standing `route.set` ops (an observed-remove set, views.py) folded into
the routes the network serves. Pure and order-free, so every replica holding the same ops shows
the same routes.

- A hostname belongs to the account of its earliest standing route, by (HLC, op id); routes for
  it from any other account are kept in the log but serve nothing (`shadowed` counts them).
  Honest nodes refuse such a route before it is signed (route_handlers.py); this is what makes a
  hostile or concurrent one harmless.
- Per (hostname, protocol, public port) the owner's latest route serves; `ops` lists every
  standing op of that slot, so removing the route removes them all.
- A removed account's routes are left out (its hostnames are free again).
- One public tcp port serves one route: a later one that asks for a taken port carries
  `conflict` and the edge leaves it out."""

from __future__ import annotations

from typing import Any

Order = tuple[int, int, str]
ROUTE_FIELDS = ("host", "protocol", "port", "listen", "instances", "prefix", "account", "author")


def _order(element: dict[str, Any]) -> Order:
    hlc = element.get("hlc") or [0, 0]
    return (int(hlc[0]), int(hlc[1]), str(element.get("id")))


def fold(elements: list[dict[str, Any]], accounts: set[str] | None = None
         ) -> list[dict[str, Any]]:
    """Standing route.set elements ({"key": host, "id": op id, **payload, "author", "hlc"}) ->
    the routes served, sorted by host, protocol, public port. With `accounts` (the live ones),
    a removed account's routes serve nothing and hold no hostname."""
    by_host: dict[str, list[dict[str, Any]]] = {}
    for element in elements:
        owner = element.get("account")
        if accounts is not None and owner is not None and owner not in accounts:
            continue
        by_host.setdefault(str(element.get("key")), []).append(element)
    out: list[dict[str, Any]] = []
    first: dict[str, Order] = {}  # route id -> its slot's earliest op: who had a port first
    for host, found in by_host.items():
        found.sort(key=_order)
        owner = found[0].get("account")
        slots: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for element in found:
            if element.get("account") == owner:
                slot = (str(element.get("protocol")), int(element.get("listen") or 0))
                slots.setdefault(slot, []).append(element)
        shadowed = sum(e.get("account") != owner for e in found)
        for same in slots.values():
            latest = same[-1]
            item = {"key": host, "id": latest["id"], "time_ms": _order(latest)[0],
                    **{f: latest[f] for f in ROUTE_FIELDS if f in latest},
                    "ops": [e["id"] for e in same]}
            if shadowed:
                item["shadowed"] = shadowed
            first[latest["id"]] = _order(same[0])
            out.append(item)
    _mark_port_conflicts(out, first)
    return sorted(out, key=lambda r: (r["key"], r.get("protocol", ""), r.get("listen", 0)))


def _mark_port_conflicts(routes: list[dict[str, Any]], first: dict[str, Order]) -> None:
    taken: dict[int, str] = {}
    tcp = sorted((r for r in routes if r.get("protocol") == "tcp"), key=lambda r: first[r["id"]])
    for route in tcp:
        port = int(route.get("listen") or 0)
        if port in taken:
            route["conflict"] = f"listen: port {port} is taken by the route for {taken[port]}"
        else:
            taken[port] = route["key"]


def of_host(routes: list[dict[str, Any]], host: str) -> list[dict[str, Any]]:
    return [r for r in routes if r.get("key") == host]


def owner_of_host(routes: list[dict[str, Any]], host: str) -> tuple[bool, str | None]:
    """(taken, account): whether `host` has a route, and whose (None: the network's)."""
    mine = of_host(routes, host)
    if not mine:
        return False, None
    account = mine[0].get("account")
    return True, account if isinstance(account, str) else None
