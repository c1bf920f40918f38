"""The state store as a DNS record source: `<node>.<network>` is the node's mesh address (nodes
view), `<instance>.<network>` the address the instance's CURRENT placement reports
(instance_view.current_observed), with the ports its spec exposes. Only the network this replica
belongs to answers.

An instance has a name only while it is placed and not deleted: before its first placement, and
once deleted (tombstoned, or desired "deleted"), the name is gone. A status written under
a superseded placement (a node declared dead that reports late, the source of a migration) lands
in its own `observed@<placement>` slot and is never read. Until a new placement reports, the name
keeps the address the previous placement reported while it was current (remembered in memory:
a live migration keeps its address and name throughout; a node that never saw that answer
answers nothing meanwhile); the new placement's status then replaces it, which is how names
follow instances that move.

Reading three views per query would cost a SQLite pass each, and a flood of queries would then
cost as much as a flood of writes; the table is built once and dropped whenever the store applies
ops (`subscribe`), so an answer is never older than the last batch the store applied."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from formation.node.dns.records import NOTHING, Found, parse_ports
from formation.node.state.instance_view import current_observed

if TYPE_CHECKING:
    from formation.node.state.store import StateStore

Table = dict[str, Found]  # lowercase name -> what it answers


Remembered = dict[str, tuple[str, str]]  # instance key -> (placement op, the address it reported)


def _ipv4(value: object) -> str | None:
    try:
        return str(ipaddress.IPv4Address(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def instance_address(record: dict[str, Any], remembered: Remembered | None = None) -> str | None:
    """The address the instance's current placement reports, or None when it has no name.
    With `remembered`: a new placement that has not reported yet keeps the address the previous
    one reported while it was current (a live migration keeps its address throughout), until
    its own status replaces it."""
    placement = record.get("placement_op")
    if not isinstance(placement, str) or record.get("desired") == "deleted":
        return None
    address = _ipv4(current_observed(record).get("address"))
    if remembered is None:
        return address
    key = str(record.get("key"))
    if address is not None:
        remembered[key] = (placement, address)
        return address
    before = remembered.get(key)
    return before[1] if before is not None and before[0] != placement else None


def build_table(network: list[dict[str, Any]], nodes: list[dict[str, Any]],
                instances: list[dict[str, Any]], remembered: Remembered | None = None
                ) -> tuple[str | None, Table]:
    """(the network's lowercase name, its names). Nodes win over instances of the same name.
    `remembered` is updated: deleted instances are forgotten, so their names are free."""
    if remembered is not None:
        present = {str(inst.get("key")) for inst in instances}
        for gone in [key for key in remembered if key not in present]:
            del remembered[gone]
    if not network:
        return None, {}
    table: dict[str, tuple[set[str], list[tuple[int, str]]]] = {}
    for inst in instances:
        address = instance_address(inst, remembered)
        if address is None:
            continue
        spec = inst.get("spec")
        addresses, ports = table.setdefault(str(inst.get("name", "")).lower(), (set(), []))
        addresses.add(address)
        ports.extend(p for p in parse_ports(spec.get("ports") if isinstance(spec, dict) else None)
                     if p not in ports)
    out = {name: Found(tuple(sorted(a)), tuple(p), instance=True)
           for name, (a, p) in table.items()}
    for node in nodes:
        if node.get("address"):
            out[str(node.get("name", "")).lower()] = Found((str(node["address"]),))
    return str(network[0].get("name", "")).lower(), out


class StateRecords:
    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._table: tuple[str | None, Table] | None = None
        self._generation = 0  # bumped by every applied batch
        self._building = asyncio.Lock()
        self._remembered: Remembered = {}
        self._unsubscribe: Callable[[], None] | None = store.subscribe(self._changed)

    def close(self) -> None:
        """Stop following the store (idempotent)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _changed(self, ops: list, origin: str | None) -> None:
        self._generation += 1
        self._table = None

    async def _current(self) -> tuple[str | None, Table]:
        if self._table is not None:
            return self._table
        async with self._building:  # one rebuild for a burst of queries, not one each
            if self._table is not None:
                return self._table
            generation = self._generation
            table = build_table(await self.store.view("network"),
                                await self.store.view("nodes"),
                                await self.store.view("instances"), self._remembered)
            if generation == self._generation:  # nothing applied while reading: keep it
                self._table = table
            return table

    async def __call__(self, name: str, network: str) -> Found:
        ours, table = await self._current()
        if ours is None or ours != network.lower():
            return NOTHING
        return table.get(name.lower(), NOTHING)
