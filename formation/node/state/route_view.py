"""The routes view: the standing `route.set` ops (an observed-remove set, views.py) folded into
the routes the network serves. Pure and order-free, so every replica holding the same ops shows
the same routes.

- A hostname belongs to the account of its earliest standing route, by (HLC, op id); routes for
  it from any other account are kept in the log but serve nothing (`shadowed` counts them).
  Honest nodes refuse such a route before it is signed (route_handlers.py); this is what makes a
  hostile or concurrent one harmless.
- A name under a wildcard (`www.example.com` under `*.example.com`) is the wildcard's account's
  when the wildcard's route came first: another account cannot take traffic from inside it.
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
    for found in by_host.values():
        found.sort(key=_order)
    claims = {host: (found[0].get("account"), _order(found[0]))
              for host, found in by_host.items()}
    out: list[dict[str, Any]] = []
    first: dict[str, Order] = {}  # route id -> its slot's earliest op: who had a port first
    for host, found in by_host.items():
        owner = found[0].get("account")
        cover = claims.get(wildcard_over(host) or "")
        if cover is not None and cover[1] < _order(found[0]):
            owner = cover[0]  # a name under an earlier wildcard is the wildcard's account's
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


def wildcard_over(host: str) -> str | None:
    """The wildcard that would serve `host` (`*.example.com` for `www.example.com`), if any."""
    if host.startswith("*.") or host.count(".") < 2:
        return None
    return "*." + host.split(".", 1)[1]


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
