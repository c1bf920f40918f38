"""One reader of the host's underlay addresses per node, shared by every part that advertises
them: the mesh (`wg_endpoints` in the node record) and discovery (the mDNS record, and the API
endpoints the join part writes into the node record). Without it each part kept what it read at
start, and a host whose DHCP lease or settings-screen address changed went on advertising an
address it no longer had.

Once a part has read the addresses through it, they are read again every second (an async
rtnetlink dump, underlay.py; not before: pyroute2 costs seconds to import on the emulated
appliance, and nothing is read before the API serves). When they change, the watch logs the
change, publishes `host/underlay_changed`, and calls each subscriber with the old and the new
list, in the order they subscribed. A subscriber may be a part that only reacts: connections
to peers made from an address the host no longer has hang until their timeout, so the
replication and gossip parts drop theirs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from formation.addresses import every_address
from formation.api.models import HealthCheck
from formation.node.net.host import LOCAL_HOST, NetHost
from formation.node.net.underlay import underlay_addresses

if TYPE_CHECKING:
    from formation.config.settings import NodeSettings
    from formation.node.service import NodeService

log = logging.getLogger(__name__)

WATCH_EVERY_S = 1.0

Subscriber = Callable[[list[str], list[str]], Awaitable[None]]


def follows_underlay(settings: NodeSettings) -> bool:
    """Whether what is advertised is the host's addresses: no configured addresses, and an API
    listening on every address."""
    if settings.discovery.addresses or not settings.api.listen:
        return False
    return every_address(settings.api.listen.rpartition(":")[0])


class UnderlayWatch:
    """A part of the node (started before the parts it is given to, in node/parts.py): one per
    host, since tests run a node's mesh in a namespace of its own."""

    name = "underlay"

    def __init__(self, host: NetHost = LOCAL_HOST) -> None:
        self.service: NodeService | None = None
        self.host = host
        self.current: list[str] | None = None  # the last reading; None before the first
        self._excluded: list[Callable[[], Sequence[str | None]]] = [self._mesh_network]
        self._subscribers: list[Subscriber] = []
        self._task: asyncio.Task | None = None

    async def start(self, service: NodeService) -> None:
        self.service = service

    async def stop(self) -> None:
        """Its reading task is the service's: cancelled when the service stops."""

    def api_handlers(self) -> None:
        return None

    def health(self) -> list[HealthCheck]:
        return []

    def _mesh_network(self) -> list[str]:
        assert self.service is not None, "the underlay watch reads only once started"
        mesh = self.service.settings.mesh
        return [str(mesh.network)] if mesh.enabled else []

    def exclude(self, networks: Callable[[], Sequence[str | None]]) -> None:
        """Addresses inside these networks (read at every check) are never underlay: the mesh
        part adds the network's CIDR from the state, which holds its and the VM bridges'."""
        self._excluded.append(networks)

    def subscribe(self, subscriber: Subscriber) -> None:
        """`await subscriber(old, new)` after each change (once the watch runs)."""
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    async def addresses(self) -> list[str]:
        """The addresses as last read; read now if never read, and from then on every second."""
        if self.current is None:
            self.current = await self.read()
        if self._task is None:
            assert self.service is not None, "the underlay watch reads only once started"
            self._task = self.service.spawn(self._run())
        return list(self.current)

    async def read(self) -> list[str]:
        excluded = [n for networks in self._excluded for n in networks() if n]
        return await underlay_addresses(self.host, excluded)

    async def check_once(self) -> bool:
        """Reads the addresses; tells the subscribers if they changed since the last reading."""
        new = await self.read()
        old, self.current = self.current, new
        if old is None or old == new:
            return False
        log.info("underlay addresses changed", extra={"fields": {
            "from": ",".join(old) or "-", "to": ",".join(new) or "-"}})
        assert self.service is not None
        self.service.publish("host", "underlay_changed", {"from": old, "to": new})
        for subscriber in list(self._subscribers):
            try:
                await subscriber(old, new)
            except Exception:  # one part failing to follow must not stop the others'
                log.exception("a part failed to follow the underlay change")
        return True

    async def _run(self) -> None:
        while True:
            try:
                await self.check_once()
            except OSError as exc:
                log.warning("cannot read the underlay addresses",
                            extra={"fields": {"error": str(exc)}})
            await asyncio.sleep(WATCH_EVERY_S)
