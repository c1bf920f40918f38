"""The state store as a DNS record source: `<node>.<network>` is the node's mesh address (nodes
view), `<instance>.<network>` the address an instance record carries (instances view: `address`,
or in its `observed` or `spec` map). Only the network this replica belongs to answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from formation.node.state.instance_view import current_observed

if TYPE_CHECKING:
    from formation.node.state.store import StateStore


def instance_address(record: dict[str, Any]) -> str | None:
    for where in (record, current_observed(record), record.get("spec")):
        if isinstance(where, dict) and isinstance(where.get("address"), str):
            return where["address"]
    return None


class StateRecords:
    def __init__(self, store: StateStore) -> None:
        self.store = store

    async def __call__(self, name: str, network: str) -> list[str]:
        found = await self.store.view("network")
        if not found or str(found[0].get("name", "")).lower() != network.lower():
            return []
        name = name.lower()
        for node in await self.store.view("nodes"):
            if str(node.get("name", "")).lower() == name and node.get("address"):
                return [node["address"]]
        return sorted({address for inst in await self.store.view("instances")
                       if str(inst.get("name", "")).lower() == name
                       and (address := instance_address(inst))})
