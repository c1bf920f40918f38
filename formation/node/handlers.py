"""The node's answers to the API. One method per endpoint in `api.routes`, same name."""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from formation import __version__
from formation.api import models as m
from formation.node.capabilities import host
from formation.node.health import for_anyone
from formation.node.server import CALLER
from formation.node.status_body import StatusBody

if TYPE_CHECKING:
    from formation.node.service import NodeService

SSE_KEEPALIVE_S = 15.0


class NodeHandlers:
    def __init__(self, service: NodeService) -> None:
        self.service = service
        self.resources = host.ResourceSampler(service.settings.data_dir)
        self.status_body = StatusBody(self._status)

    async def health(self, request: web.Request, body: m.Empty) -> m.Health:
        svc = self.service
        local = str(request.get(CALLER, "")).startswith("unix:")  # the local socket's callers
        data_ok = os.access(svc.settings.data_dir, os.W_OK)
        checks = [
            m.HealthCheck(name="api", ok=True, detail="serving"),
            m.HealthCheck(name="data_dir", ok=data_ok,
                          detail=str(svc.settings.data_dir) + ("" if data_ok else " not writable")),
            m.HealthCheck(name="capabilities", ok=True,
                          detail="probed" if svc.prober.current.probed_at else "probing"),
        ]
        for component in svc.components:
            if component in svc.pending_components:
                checks.append(m.HealthCheck(name=component.name, ok=False, detail="starting"))
            else:
                checks.extend(component.health())
        health = m.Health(status="ok" if all(c.ok for c in checks) else "degraded", checks=checks)
        return health if local else for_anyone(health)

    def _status(self, uptime_s: float) -> m.NodeStatus:
        svc = self.service
        return m.NodeStatus(
            identity=svc.identity_info(),
            name=svc.settings.name,
            version=__version__,
            started_at=svc.started_at,
            uptime_s=uptime_s,
            listen=svc.listen_addresses(),
            capabilities=svc.prober.current,
            resources=self.resources.current(),
        )

    async def node_status(self, request: web.Request, body: m.Empty) -> web.Response:
        """Answers with bytes rendered by StatusBody (the same JSON as `_status` would give)."""
        svc = self.service
        resources = self.resources.current()
        inputs = (svc.prober.current, resources, svc.started_at)
        uptime = round(time.monotonic() - svc.started_monotonic, 3)
        return web.Response(body=self.status_body.render(inputs, uptime),
                            content_type="application/json")

    async def get_config(self, request: web.Request, body: m.Empty) -> m.ConfigView:
        svc = self.service
        return m.ConfigView(
            config_file=str(svc.config_file) if svc.config_file else None,
            settings=svc.settings.model_dump(mode="json"),
        )

    async def get_capabilities(self, request: web.Request, body: m.Empty) -> m.Capabilities:
        return self.service.prober.current

    async def probe_capabilities(self, request: web.Request, body: m.ProbeRequest
                                 ) -> m.Capabilities:
        return await self.service.probe_capabilities(body.only)

    async def events(self, request: web.Request, *, query: m.EventsQuery) -> web.StreamResponse:
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        })
        subscription = self.service.bus.subscribe(topic=query.topic, since=query.since)
        stream = aiter(subscription)
        try:
            await response.prepare(request)
            await response.write(b": formation event stream\n\n")
            while True:
                try:
                    event = await asyncio.wait_for(anext(stream), SSE_KEEPALIVE_S)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                except StopAsyncIteration:
                    break
                frame = f"id: {event.seq}\nevent: {event.kind}\ndata: {event.model_dump_json()}\n\n"
                await response.write(frame.encode())
        except ConnectionResetError:
            pass  # the client hung up: the normal end of a stream, not a failure
        finally:
            await stream.aclose()
            self.service.bus.unsubscribe(subscription)  # also if the stream was never started
        return response

    async def metrics(self, request: web.Request) -> web.Response:
        svc = self.service
        svc.metrics.uptime.set(time.monotonic() - svc.started_monotonic)
        payload = generate_latest(svc.metrics.registry)
        return web.Response(body=payload, headers={"Content-Type": CONTENT_TYPE_LATEST})
