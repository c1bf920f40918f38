"""The edge's routes from the state store: whenever ops about routes or instances are applied,
the routes view and the instances view become the edge's routes again (route_backends.py) and
the edge is given them when they changed. So a new route, a removed one, an instance that starts,
stops or moves (a new placement reporting a new address) reach the engine without a manual step,
on every edge node alike.

Batches that arrive together are coalesced (the views are read once per wake-up), and a route
the edge cannot take (one clashing with an operator's own route, a tcp route on the port of the
edge's web server) is left out alone, with a warning, rather than failing the others (the edge
part sends http and https routes to Caddy and tcp routes to HAProxy)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from formation.node.edge.caddy_config import unserved
from formation.node.edge.routes import Route, validate_routes
from formation.node.state.op_watch import OpWatch
from formation.node.state.route_backends import edge_routes

if TYPE_CHECKING:
    from formation.node.state.store import StateStore

WATCHED = ("route.", "instance.")  # op kinds that change what the edge serves
COALESCE_S = 0.05  # ops applied within this of a wake-up share one re-read of the views


def servable(fixed: list[Route], wanted: list[Route]) -> tuple[list[Route], dict[str, str]]:
    """The routes of `wanted` the engine can serve beside `fixed` (kept in order), and why each
    other one is left out (name -> the first problem)."""
    kept: list[Route] = []
    left_out: dict[str, str] = {}
    for route in wanted:
        problems = unserved([route]) or validate_routes([*fixed, *kept, route])
        if problems:
            left_out[route.name] = problems[0]
        else:
            kept.append(route)
    return kept, left_out


class RouteFeed:
    def __init__(self, store: StateStore,
                 apply: Callable[[list[Route]], Awaitable[object]]) -> None:
        self.store, self.apply = store, apply
        self.served: list[Route] | None = None  # what `apply` last took
        self._watch = OpWatch(store, lambda kind: kind.startswith(WATCHED), self.once,
                              "routes from the state", COALESCE_S)

    async def once(self) -> None:
        routes = edge_routes(await self.store.view("routes"), await self.store.view("instances"))
        if routes != self.served:
            await self.apply(routes)
            self.served = routes

    async def run(self) -> None:
        await self._watch.run()
