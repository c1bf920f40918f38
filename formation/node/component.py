"""The parts of the node service (state store, discovery, mesh, VMs) plug in as components: each
starts after the identity exists and before the API is served, may bring an object of API
handlers, reports health, and stops in reverse order. Which parts a node runs, and which part
uses which, is node/parts.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from formation.api.models import HealthCheck

if TYPE_CHECKING:
    from formation.node.service import NodeService


class Component(Protocol):
    name: str
    # Optional class attribute `after_ready = True`: a standalone node (`formation node`) starts
    # the part after it told systemd it is ready, because nothing the API needs to answer waits
    # for it and its start is long on a slow machine (the mesh: pyroute2, a kernel module, a
    # link). Until then its endpoints answer 503 and its health says "starting".

    async def start(self, service: NodeService) -> None:
        """Open resources; `service.identity`, `.settings`, `.bus` and `.metrics` are ready, and
        so are the parts this one was given in its constructor (they start before it)."""

    async def stop(self) -> None:
        """Release everything start opened. Called once, after the API stopped serving."""

    def api_handlers(self) -> object | None:
        """An object whose methods are named after this part's endpoints, or None."""

    def health(self) -> list[HealthCheck]:
        """This part's health checks, shown in GET /v1/health."""


def starts_after_ready(component: Component) -> bool:
    return bool(getattr(component, "after_ready", False))
