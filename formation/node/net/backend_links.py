"""What both WireGuard backends share: the interface's addresses and routes, through rtnetlink."""

from __future__ import annotations

from formation.node.net.host import NetHost


class LinkMixin:
    """Addresses and routes go through rtnetlink for both backends. They are remembered so a
    backend that has to recreate its device (wireguard-go restarted) can put them back.
    `links` (pyroute2) is imported where it is used, so a node without a mesh never loads it."""

    name: str
    host: NetHost

    def _init_links(self) -> None:
        self._addresses: list[str] = []
        self._routes: list[str] = []

    async def add_address(self, cidr: str) -> None:
        from formation.node.net import links

        await links.add_address(self.host, self.name, cidr)
        if cidr not in self._addresses:
            self._addresses.append(cidr)

    async def remove_address(self, cidr: str) -> None:
        from formation.node.net import links

        await links.remove_address(self.host, self.name, cidr)
        if cidr in self._addresses:
            self._addresses.remove(cidr)

    async def add_route(self, destination: str) -> None:
        from formation.node.net import links

        await links.add_route(self.host, destination, self.name)
        if destination not in self._routes:
            self._routes.append(destination)

    async def _restore_links(self) -> None:
        from formation.node.net import links

        await links.set_up(self.host, self.name)
        for cidr in self._addresses:
            await links.add_address(self.host, self.name, cidr)
        for destination in self._routes:
            await links.add_route(self.host, destination, self.name)
