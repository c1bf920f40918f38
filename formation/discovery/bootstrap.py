"""Bootstrap lists: HOST:PORT entries of nodes beyond the local link. Tried in parallel, each
with its own exponential backoff, only while mDNS has found nobody; whoever answers joins the
same peer table mDNS fills."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from formation.api import discovery_routes
from formation.api.client import ApiError, NodeClient, NodeUnreachable
from formation.discovery.peers import PeerTable
from formation.identity import NodeIdentity, node_id_for

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 0.5


class Bootstrapper:
    def __init__(self, entries: list[str], identity: NodeIdentity, peers: PeerTable, *,
                 delay_s: float, backoff_max_s: float,
                 mdns_found: Callable[[], bool]) -> None:
        self.entries = entries
        self.identity = identity
        self.peers = peers
        self.delay_s = delay_s
        self.backoff_max_s = backoff_max_s
        self._mdns_found = mdns_found
        self.state: dict[str, str] = {entry: "waiting" for entry in entries}

    async def run(self) -> None:
        await asyncio.sleep(self.delay_s)
        await asyncio.gather(*(self._contact(entry) for entry in self.entries))

    async def _contact(self, entry: str) -> None:
        backoff = FIRST_BACKOFF_S
        async with NodeClient.tcp(entry, self.identity, timeout_s=5.0) as client:
            while True:
                if self._mdns_found():
                    self.state[entry] = "idle: mDNS found peers"
                    await asyncio.sleep(max(self.delay_s, 1.0))
                    continue
                try:
                    hello = await client.call(discovery_routes.discovery_hello)
                except (NodeUnreachable, ApiError) as exc:
                    self.state[entry] = f"retrying in {backoff:.1f} s: {exc}"
                    await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
                    backoff = min(backoff * 2, self.backoff_max_s)
                    continue
                if not _key_matches(hello.public_key, hello.node_id):
                    self.state[entry] = "refused: its node id does not match its key"
                    return
                self.peers.observe("bootstrap", hello.node_id, hello.public_key, entry,
                                   network=hello.network, name=hello.name, version=hello.version)
                self.state[entry] = f"found {hello.name or hello.node_id}"
                backoff = FIRST_BACKOFF_S
                await asyncio.sleep(self.backoff_max_s)  # refresh now and then


def _key_matches(public_key: str, node_id: str) -> bool:
    try:
        return len(public_key) == 64 and node_id_for(bytes.fromhex(public_key)) == node_id
    except ValueError:
        return False
