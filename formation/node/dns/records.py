"""Where names come from. The DNS server asks a record source; the state store will be one (its
instance and node views), a static mapping serves tests and hand-written configurations."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence

# (name, network) -> IPv4 addresses, possibly awaitable. `name` is an instance or node name.
RecordSource = Callable[[str, str], Sequence[str] | Awaitable[Sequence[str]]]


async def lookup(source: RecordSource, name: str, network: str) -> list[str]:
    found = source(name, network)
    if inspect.isawaitable(found):
        found = await found
    return list(found)


class StaticRecords:
    """A fixed mapping {(name, network): [addresses]}; names compare lowercase."""

    def __init__(self, records: Mapping[tuple[str, str], Sequence[str]] | None = None) -> None:
        self.records = {(n.lower(), w.lower()): list(a) for (n, w), a in (records or {}).items()}

    def set(self, name: str, network: str, addresses: Sequence[str]) -> None:
        self.records[(name.lower(), network.lower())] = list(addresses)

    def __call__(self, name: str, network: str) -> list[str]:
        return self.records.get((name.lower(), network.lower()), [])
