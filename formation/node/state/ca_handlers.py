"""The handler of the network CA's public endpoint (formation/api/ca_routes.py), a part of the
state store's handlers: the root and its fingerprint from the `ca` view, nothing sealed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from formation.api.ca_routes import NetworkCa
from formation.api.caller import Caller
from formation.api.errors import NotFound
from formation.api.models import Empty
from formation.node.state.ca_rules import COLLECTION, current

if TYPE_CHECKING:
    from formation.node.state.store import StateStore


class CaHandlers:
    """Mixed into StateHandlers (one handler object per part)."""

    @property
    def store(self) -> StateStore:
        raise NotImplementedError

    async def ca_root(self, body: Empty, caller: Caller) -> NetworkCa:
        ca = current(await self.store.view(COLLECTION))
        if ca is None:
            raise NotFound("The network has no CA (an admin runs formation ca init)")
        return NetworkCa(fingerprint=str(ca["fingerprint"]), root_pem=str(ca["root_pem"]))
