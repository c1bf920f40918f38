"""The edge as a part of the node (parts.py): on a node whose settings enable it, or which an
admin gave the `edge` capability (capability_watch.py: started and stopped as that op lands),
runs the proxy engine, serves the routes it is given (`set_routes`) and those of the state
store's routes view (state/route_feed.py, when built with the state part), puts each route's
metrics and each backend's health on the node's /metrics, and reports the engine's
health in GET /v1/health. On an edge by capability, with the state part, it shares certificates
with the other edges (cert_sync.py).

http and https routes go to Caddy; tcp routes to HAProxy (haproxy_engine.py: Debian's Caddy has
no layer4 app), which runs only while at least one tcp route is served."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from formation.api import models as m
from formation.node.edge.admin import AdminError
from formation.node.edge.caddy_config import LETS_ENCRYPT
from formation.node.edge.capability_watch import CapabilityWatch
from formation.node.edge.cert_sync import POLL_S as CERT_POLL_S
from formation.node.edge.cert_sync import CertSync
from formation.node.edge.engine import CaddyEngine, EngineError
from formation.node.edge.haproxy_config import servable_tcp
from formation.node.edge.haproxy_engine import HaproxyEngine, HaproxyError
from formation.node.edge.haproxy_metrics import TcpRouteCollector
from formation.node.edge.metrics import EdgeCollector
from formation.node.edge.routes import Route, validate_routes
from formation.node.edge.settings import EdgeSettings
from formation.node.net.host import LOCAL_HOST, NetHost
from formation.node.state.route_feed import RouteFeed, servable

if TYPE_CHECKING:
    from formation.node.service import NodeService
    from formation.node.state.component import StateComponent

log = logging.getLogger(__name__)

HEALTH_REFRESH_S = 5.0  # how often the backends' health is read for /metrics


class EdgeComponent:
    name = "edge"
    after_ready = True  # starting the engine waits for nothing the API needs
    cert_poll_s = CERT_POLL_S  # how often an issuer looks for a new certificate (tests: less)

    def __init__(self, host: NetHost = LOCAL_HOST, routes: list[Route] | None = None,
                 settings: EdgeSettings | None = None,
                 state: StateComponent | None = None,
                 dead: Callable[[], set[str]] | None = None) -> None:
        """`settings`: instead of the node's (a test's own part). `state`: serve its routes
        view too (beside `routes`, the operator's own). `dead`: keys of the members this node
        saw dead (VmmComponent.dead): no longer chosen to issue certificates."""
        self.host, self.settings, self.state, self.dead = host, settings, state, dead
        self.initial_routes = list(routes or [])
        self.state_routes: list[Route] = []  # the routes view's, as the feed last gave them
        self.left_out: dict[str, str] = {}  # state routes the engine cannot take, and why
        self.engine: CaddyEngine | None = None
        self.tcp_engine: HaproxyEngine | None = None  # while tcp routes are served
        self.health_view: dict[str, bool] = {}
        self._collector: EdgeCollector | None = None
        self._tcp_collector: TcpRouteCollector | None = None
        self._tcp_switch = asyncio.Lock()  # one start, change or stop of HAProxy at a time
        self._service: NodeService | None = None
        self._engine_tasks: list[asyncio.Task[None]] = []  # the route feed and health loop
        self._switch = asyncio.Lock()  # one start or stop of the engine at a time
        self._watch: asyncio.Task[None] | None = None

    def settings_of(self, service: NodeService) -> EdgeSettings:
        """The node's `edge:` settings (NodeSettings.edge once wired; off until then)."""
        edge = self.settings or getattr(service.settings, "edge", None)
        return edge if isinstance(edge, EdgeSettings) else EdgeSettings()

    async def start(self, service: NodeService) -> None:
        self._service = service
        settings = self.settings_of(service)
        store = self.state.store if self.state is not None else None
        if store is not None and not settings.enabled:  # the edge capability may turn it on
            own = service.identity.public_key_hex if service.identity is not None else None
            self._watch = service.spawn(CapabilityWatch(store, own, settings.enabled,
                                                        self._run_engine).run())
        elif settings.enabled:
            await self._run_engine(True)

    async def _run_engine(self, wanted: bool) -> None:
        """Start the engine (wanted) or stop it, when it is not already so."""
        async with self._switch:
            if wanted and self.engine is None:
                await self._start_engine()
            elif not wanted and self.engine is not None:
                log.info("edge: stopping, the edge capability was taken away")
                await self._stop_engine()

    async def _start_engine(self) -> None:
        service = self._service
        if service is None:  # only ever called after start()
            return
        settings = self.settings_of(service)
        run_dir = settings.run_dir or service.settings.data_dir / "edge"
        engine = CaddyEngine(settings, run_dir, self.host)
        certs = None
        store = self.state.store if self.state is not None else None
        if store is not None and service.identity is not None:
            certs = CertSync(store, service.identity, engine.paths.storage, settings.http_port,
                             engine.set_share, self.dead, self.cert_poll_s,
                             settings.acme_directory or LETS_ENCRYPT)
            try:  # before Caddy could ask the CA for another edge's host
                engine.share, _ = await certs.current()
                certs.applied = engine.share
            except Exception as exc:  # decided again once running
                log.warning("edge: shared certificates not decided at start",
                            extra={"fields": {"error": str(exc)}})
        try:
            await engine.start(_web(self.initial_routes + self.state_routes))
        except asyncio.CancelledError:  # the node stops meanwhile: leave no caddy behind
            await engine.stop()
            raise
        self.engine = engine
        try:
            await self._apply_tcp(_tcp(self.initial_routes + self.state_routes))
        except HaproxyError as exc:  # the http routes are served; the tcp ones say why not
            self._tcp_left_out(str(exc))
        if self.state is not None and self.state.store is not None:
            self._engine_tasks.append(
                service.spawn(RouteFeed(self.state.store, self._from_state).run()))
        if certs is not None:
            self._engine_tasks.append(service.spawn(certs.run()))
        self._collector = EdgeCollector(engine.metrics, self.health_view)
        service.metrics.registry.register(self._collector)
        self._engine_tasks.append(service.spawn(self._follow_health()))
        store = self.state.store if self.state is not None else None
        if store is not None and service.identity is not None:  # .fog certificates
            from formation.node.edge.fog_ca_feed import FogCaFeed

            self._engine_tasks.append(service.spawn(FogCaFeed(
                store, service.identity, run_dir, engine.set_fog_ca).run()))

    async def set_routes(self, routes: list[Route]) -> list[str]:
        """Serve exactly `routes` beside the state's (EngineError, one line, when one is
        invalid)."""
        problems = validate_routes(list(routes))
        if problems:
            raise EngineError(problems[0] if len(problems) == 1 else
                              f"{problems[0]} (and {len(problems) - 1} more)")
        self.initial_routes = list(routes)
        return await self._apply_all()

    async def _apply_all(self) -> list[str]:
        """Caddy gets the http/https routes, HAProxy the tcp ones (started or stopped as
        tcp routes come and go)."""
        if self.engine is None:
            return []
        routes = self.initial_routes + self.state_routes
        changes = await self.engine.apply(_web(routes))
        return changes + await self._apply_tcp(_tcp(routes))

    async def _apply_tcp(self, routes: list[Route]) -> list[str]:
        async with self._tcp_switch:
            if routes and self.tcp_engine is None and self._service is not None:
                settings = self.settings_of(self._service)
                run_dir = settings.run_dir or self._service.settings.data_dir / "edge"
                engine = HaproxyEngine(settings, run_dir, self.host)
                try:
                    await engine.start(routes)
                except asyncio.CancelledError:  # the node stops meanwhile: no haproxy left
                    await engine.stop()
                    raise
                self.tcp_engine = engine
                self._tcp_collector = TcpRouteCollector(engine.counters)
                self._service.metrics.registry.register(self._tcp_collector)
                return [f"haproxy started for {len(routes)} tcp route(s)"]
            if not routes and self.tcp_engine is not None:
                await self._stop_tcp()
                return ["haproxy stopped (no tcp route left)"]
            if self.tcp_engine is not None:
                return await self.tcp_engine.apply(routes)
            return []

    async def _stop_tcp(self) -> None:
        engine, self.tcp_engine = self.tcp_engine, None
        if self._tcp_collector is not None and self._service is not None:
            self._service.metrics.registry.unregister(self._tcp_collector)
            self._tcp_collector = None
        if engine is not None:
            await engine.stop()

    def _tcp_left_out(self, why: str) -> None:
        """HAProxy did not take the tcp routes of the state: those it does not serve are left
        out, saying why (it serves on what it served before)."""
        served = set(self.tcp_engine.routes) if self.tcp_engine is not None else set()
        unserved = {r.name for r in _tcp(self.state_routes) if r not in served}
        log.warning("edge: tcp routes not served", extra={"fields": {
            "routes": sorted(unserved), "why": why}})
        self.left_out.update({name: why for name in unserved})
        self.state_routes = [r for r in self.state_routes if r.name not in unserved]

    async def _from_state(self, routes: list[Route]) -> list[str]:
        kept, left_out = servable(_web(self.initial_routes), _web(routes))
        settings = self.settings_of(self._service) if self._service else EdgeSettings()
        kept_tcp, left_tcp = servable_tcp(self.initial_routes + kept, _tcp(routes), settings)
        kept, left_out = kept + kept_tcp, {**left_out, **left_tcp}
        for name, why in left_out.items():
            if self.left_out.get(name) != why:
                log.warning("edge: a route of the state is not served",
                            extra={"fields": {"route": name, "why": why}})
        self.state_routes, self.left_out = kept, left_out
        try:
            return await self._apply_all()
        except HaproxyError as exc:  # the http routes are served; the tcp ones say why not
            self._tcp_left_out(str(exc))
            raise

    async def _follow_health(self) -> None:
        while self.engine is not None:
            with contextlib.suppress(AdminError):
                seen = await self.engine.upstreams_healthy()
                tcp = self.tcp_engine
                if tcp is not None:
                    for dial, ok in (await tcp.upstreams_healthy()).items():
                        seen[dial] = seen.get(dial, False) or ok
                self.health_view.clear()
                self.health_view.update(seen)
            await asyncio.sleep(HEALTH_REFRESH_S)

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        async with self._switch:
            await self._stop_engine()

    async def _stop_engine(self) -> None:
        engine, self.engine = self.engine, None
        tasks, self._engine_tasks = self._engine_tasks, []
        for task in tasks:
            task.cancel()
        if self._collector is not None and self._service is not None:
            self._service.metrics.registry.unregister(self._collector)
            self._collector = None
        async with self._tcp_switch:
            await self._stop_tcp()
        if engine is not None:
            await engine.stop()
        self.health_view.clear()

    def api_handlers(self) -> None:
        return None

    def health(self) -> list[m.HealthCheck]:
        if self.engine is None:
            return []
        up = self.engine.applied is not None
        routes = len(self.engine.routes)
        down = sorted(b for b, ok in self.health_view.items() if not ok)
        detail = f"caddy serving {routes} route(s)" if up else "caddy restarting"
        tcp = self.tcp_engine
        if tcp is not None:
            tcp_up = tcp.applied is not None
            up = up and tcp_up
            detail += (f"; haproxy serving {len(tcp.routes)} tcp route(s)" if tcp_up
                       else "; haproxy restarting")
        if down:
            detail += f"; backends failing health checks: {', '.join(down)}"
        if self.left_out:
            detail += f"; {len(self.left_out)} route(s) of the state not served (see the log)"
        share = self.engine.share
        if share is not None and (share.issue or share.load):
            detail += (f"; certificates shared with the other edges: issues {len(share.issue)}"
                       f" host(s), serves {len(share.load)} published by others")
        return [m.HealthCheck(name="edge", ok=up, detail=detail)]


def _web(routes: list[Route]) -> list[Route]:
    """Caddy's share: http and https routes."""
    return [r for r in routes if r.protocol != "tcp"]


def _tcp(routes: list[Route]) -> list[Route]:
    """HAProxy's share."""
    return [r for r in routes if r.protocol == "tcp"]
