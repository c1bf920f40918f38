"""The node's answers to the API. One method per endpoint in `api.routes`, same name."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from formation import __version__
from formation.api import models as m
from formation.api.caller import Caller
from formation.api.rendered import Rendered
from formation.node.capabilities import host
from formation.node.events import EventBus, Subscription
from formation.node.health import for_anyone
from formation.node.status_body import StatusBody

if TYPE_CHECKING:
    from formation.node.service import NodeService



class EventStream:
    """One client's events: the server iterates it and closes it however the stream ends, which
    ends the subscription (also when no event was ever read)."""

    def __init__(self, bus: EventBus, subscription: Subscription) -> None:
        self._bus, self._subscription = bus, subscription
        self._items = aiter(subscription)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> m.Event:
        return await anext(self._items)

    async def aclose(self) -> None:
        await self._items.aclose()
        self._bus.unsubscribe(self._subscription)


class NodeHandlers:
    def __init__(self, service: NodeService) -> None:
        self.service = service
        self.resources = host.ResourceSampler(service.settings.data_dir)
        self.status_body = StatusBody(self._status)

    async def health(self, body: m.Empty, caller: Caller) -> m.Health:
        svc = self.service
        local = caller.local  # the local socket's callers see every detail
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

    async def node_status(self, body: m.Empty, caller: Caller) -> Rendered[m.NodeStatus]:
        """Answers with bytes rendered by StatusBody (the same JSON as `_status` would give)."""
        svc = self.service
        resources = self.resources.current()
        inputs = (svc.prober.current, resources, svc.started_at)
        uptime = round(time.monotonic() - svc.started_monotonic, 3)
        return Rendered(self.status_body.render(inputs, uptime))

    async def get_config(self, body: m.Empty, caller: Caller) -> m.ConfigView:
        svc = self.service
        return m.ConfigView(
            config_file=str(svc.config_file) if svc.config_file else None,
            settings=svc.settings.model_dump(mode="json"),
        )

    async def get_capabilities(self, body: m.Empty, caller: Caller) -> m.Capabilities:
        return self.service.prober.current

    async def probe_capabilities(self, body: m.ProbeRequest, caller: Caller) -> m.Capabilities:
        return await self.service.probe_capabilities(body.only)

    async def events(self, body: m.Empty, caller: Caller, *,
                     query: m.EventsQuery) -> AsyncIterator[m.Event]:
        bus = self.service.bus
        return EventStream(bus, bus.subscribe(topic=query.topic, since=query.since))

    async def metrics(self, body: m.Empty, caller: Caller) -> Rendered[m.MetricsText]:
        svc = self.service
        svc.metrics.uptime.set(time.monotonic() - svc.started_monotonic)
        return Rendered(generate_latest(svc.metrics.registry), CONTENT_TYPE_LATEST)
