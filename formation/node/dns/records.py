"""Where names come from. The DNS server asks a record source; the state store is one (its
instance and node views), a static mapping serves tests and hand-written configurations.

A source answers either a plain list of addresses (a node or a static name) or a `Found`, which
also carries the ports an instance exposes (SRV and TXT records) and whether the name is an
instance's: instance names get their own, small TTL because instances move."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Found:
    addresses: tuple[str, ...]
    ports: tuple[tuple[int, str], ...] = ()  # (port, "tcp" | "udp"), as the spec lists them
    instance: bool = False  # an instance's name: answered with the instance TTL


NOTHING = Found(())

# (name, network) -> addresses or a Found, possibly awaitable. `name` is an instance or node name.
RecordSource = Callable[[str, str], Sequence[str] | Found | Awaitable[Sequence[str] | Found]]


def parse_ports(ports: object) -> tuple[tuple[int, str], ...]:
    """spec.ports (["80/tcp", ...], checked by the rules) as (port, proto) pairs; anything that
    does not parse is left out rather than answered wrongly."""
    found: list[tuple[int, str]] = []
    for entry in ports if isinstance(ports, list) else []:
        number, _, proto = str(entry).partition("/")
        if number.isdigit() and 0 < int(number) < 65536 and proto.lower() in ("tcp", "udp"):
            pair = (int(number), proto.lower())
            if pair not in found:
                found.append(pair)
    return tuple(found)


async def lookup(source: RecordSource, name: str, network: str) -> Found:
    found = source(name, network)
    if inspect.isawaitable(found):
        found = await found
    if isinstance(found, Found):
        return found
    return Found(tuple(found))


class StaticRecords:
    """A fixed mapping {(name, network): [addresses]}; names compare lowercase."""

    def __init__(self, records: Mapping[tuple[str, str], Sequence[str]] | None = None) -> None:
        self.records = {(n.lower(), w.lower()): list(a) for (n, w), a in (records or {}).items()}

    def set(self, name: str, network: str, addresses: Sequence[str]) -> None:
        self.records[(name.lower(), network.lower())] = list(addresses)

    def __call__(self, name: str, network: str) -> list[str]:
        return self.records.get((name.lower(), network.lower()), [])
