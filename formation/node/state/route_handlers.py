"""Handlers of the route endpoints (api/route_routes.py), mixed into StateHandlers.

The rules judge every route op on every replica (route_rules.py); what only a node can check
before anything is signed is checked here: that the hostname is not another account's (the
routes view: a rule cannot see it) and that a tcp route's public port is free. A tenant's
route.set goes through the tenant draft endpoint, which runs the same check first."""

from __future__ import annotations

from typing import Any

from formation.api import account_models as am
from formation.api import route_models as rm
from formation.api.caller import Caller
from formation.api.errors import BadRequest, Conflict, Forbidden, NotFound
from formation.api.models import Empty
from formation.node.edge.routes import Backend
from formation.node.state import route_backends, route_view
from formation.node.state.op import OpError
from formation.node.state.tenant_handlers import TenantHandlers


def taken_problem(routes: list[dict[str, Any]], payload: dict[str, Any]) -> str | None:
    """Why `payload` (a route.set's) may not be written now, or None."""
    host = str(payload.get("host"))
    taken, owner = route_view.owner_of_host(routes, host)
    if taken and owner != payload.get("account"):
        whose = f"account {owner!r}" if owner else "the network"
        return f"host: {host} is served for {whose}; its routes must be removed first"
    cover = route_view.wildcard_over(host)
    if not taken and cover is not None:
        taken, owner = route_view.owner_of_host(routes, cover)
        if taken and owner != payload.get("account"):
            whose = f"account {owner!r}" if owner else "the network"
            return f"host: {host} is under {cover}, served for {whose}"
    listen = payload.get("listen")
    if payload.get("protocol") == "tcp" and listen is not None:
        for route in routes:
            if route.get("listen") == listen and route.get("key") != host:
                return f"listen: port {listen} is taken by the route for {route['key']}"
    return None


def _find(instances: list[dict[str, Any]], ref: str) -> dict[str, Any]:
    """By name, full id, or a unique id prefix (6+ hex)."""
    for inst in instances:
        if ref in (inst.get("name"), inst["key"]):
            return inst
    hits = [i for i in instances if len(ref) >= 6 and i["key"].startswith(ref)]
    if len(hits) == 1:
        return hits[0]
    raise NotFound(f"to: no instance named {ref}" if not hits
                   else f"to: {ref} is a prefix of {len(hits)} instances; give more of the id")


def default_port(instances: list[dict[str, Any]], protocol: str) -> int:
    """The instances' one exposed tcp port; 80 for http/https when they expose none."""
    exposed = sorted({int(p.split("/")[0]) for i in instances
                      for p in (i.get("spec") or {}).get("ports") or [] if p.endswith("/tcp")})
    if len(exposed) == 1:
        return exposed[0]
    if not exposed and protocol != "tcp":
        return 80
    if not instances:
        raise BadRequest("port: expected the instances' port (no instance matches yet)")
    names = ", ".join(str(i.get("name")) for i in instances)
    raise BadRequest(f"port: {names} expose{'s' * (len(instances) == 1)} "
                     f"{', '.join(map(str, exposed)) or 'no port'}; name the port "
                     "(INSTANCE:PORT)")


class RouteHandlers(TenantHandlers):
    async def _views(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return await self.store.view("routes"), await self.store.view("instances")

    def _edge_health(self) -> dict[str, bool] | None:
        """What this node's edge last saw of its backends (`addr:port` -> ok), if it is one."""
        service = getattr(getattr(self, "component", None), "service", None)
        edge = getattr(getattr(service, "parts", None), "edge", None)
        if getattr(edge, "engine", None) is None:
            return None
        health = getattr(edge, "health_view", None)
        return dict(health) if isinstance(health, dict) else None

    def _info(self, route: dict[str, Any], instances: list[dict[str, Any]],
              health: dict[str, bool] | None) -> rm.RouteInfo:
        backends = []
        for inst in route_backends.serving(route, instances):
            where = route_backends.address(inst)
            dial = Backend(where, int(route["port"])).dial if where else None
            backends.append(rm.RouteBackend(
                instance=inst["key"], name=str(inst.get("name")), address=where,
                healthy=health.get(dial) if health is not None and dial else None))
        return rm.RouteInfo(
            host=route["key"], protocol=route["protocol"], port=route["port"],
            listen=route.get("listen"), instances=list(route.get("instances") or []),
            prefix=route.get("prefix"), account=route.get("account"), author=route["author"],
            id=route["id"], ops=route["ops"], shadowed=route.get("shadowed", 0),
            conflict=route.get("conflict"), backends=backends)

    async def route_list(self, body: Empty, caller: Caller) -> rm.RouteList:
        routes, instances = await self._views()
        health = self._edge_health()
        return rm.RouteList(routes=[self._info(r, instances, health) for r in routes])

    async def tenant_routes(self, body: Empty, caller: Caller) -> rm.RouteList:
        _key, account = await self._account(caller)
        routes, instances = await self._views()
        if not account.admin:
            routes = [r for r in routes if r.get("account") == account.name]
        return rm.RouteList(routes=[self._info(r, instances, None) for r in routes])

    async def route_set(self, body: rm.RouteSet, caller: Caller) -> rm.RouteInfo:
        routes, instances = await self._views()
        payload: dict[str, Any] = {"host": body.host, "protocol": body.protocol}
        if body.to and body.prefix is not None:
            raise BadRequest("to: either instances (to) or a name prefix (prefix), not both")
        if body.prefix is not None:
            payload["prefix"] = body.prefix
            serving = [i for i in instances if str(i.get("name", "")).startswith(body.prefix)]
        elif body.to:
            serving = [_find(instances, ref) for ref in body.to]
            payload["instances"] = list(dict.fromkeys(i["key"] for i in serving))
        else:
            raise BadRequest("to: expected the instances that serve the route (or a prefix)")
        accounts = {i.get("account") for i in serving}
        account = body.account
        if account is None and "instances" in payload and len(accounts) == 1:
            account = accounts.pop()
        if account is not None:
            payload["account"] = account
        payload["port"] = body.port if body.port is not None else default_port(
            serving, body.protocol)
        if body.protocol == "tcp":
            if body.listen is None:
                raise BadRequest("listen: expected the edge's public port of a tcp route")
            payload["listen"] = body.listen
        elif body.listen is not None:
            raise BadRequest("listen: only for tcp routes")
        problem = taken_problem(routes, payload)
        if problem is not None:
            raise Conflict(problem)
        op = await self._append("route.set", payload)
        for route in await self.store.view("routes"):
            if op.id.hex() in route["ops"]:
                return self._info(route, instances, self._edge_health())
        raise Conflict(f"host: {body.host} is served by another route")  # a concurrent one won

    async def route_remove(self, body: Empty, caller: Caller, host: str) -> rm.RouteRemoved:
        routes = route_view.of_host(await self.store.view("routes"), host)
        if not routes:
            raise NotFound(f"host: no route for {host}")
        removed = []
        for route in routes:
            for op_id in route["ops"]:
                await self._append("route.remove", {"route": op_id})
                removed.append(op_id)
        return rm.RouteRemoved(host=host, removed=removed)

    async def _append(self, kind: str, payload: dict[str, Any]) -> Any:
        try:
            return await self.store.append(kind, payload)
        except OpError as exc:
            if exc.reason == "unauthorized":
                raise Forbidden(f"{kind} refused: {exc}") from None
            raise BadRequest(f"{kind} refused ({exc.reason}): {exc}") from None

    async def tenant_draft(self, body: am.DraftRequest, caller: Caller) -> am.Draft:
        """A tenant's route.set: the hostname must not be another account's (checked before
        the tenant signs; the routes view keeps a hostile one harmless anyway)."""
        if body.kind == "route.set":
            problem = taken_problem(await self.store.view("routes"), body.payload)
            if problem is not None:
                raise Conflict(problem)
        return await super().tenant_draft(body, caller)
