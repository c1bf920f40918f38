"""A network namespace with known links, for tests that read a host's interfaces: a veth pair
(one end up with an address, the other down), a link named like the mesh interface, and
loopback. Named with a per-run prefix and removed afterwards, also when the test fails."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from pyroute2 import NetNS, netns


@dataclass(frozen=True)
class LinkedNamespace:
    netns: str
    up: str  # veth end: up, 192.0.2.10/24
    down: str  # its peer: down, no address
    mesh: str  # a bridge named as the node's mesh interface

    @property
    def up_address(self) -> str:
        return "192.0.2.10/24"


def _create(space: LinkedNamespace) -> None:
    netns.create(space.netns)
    with NetNS(space.netns) as ns:
        ns.link("add", ifname=space.up, kind="veth", peer={"ifname": space.down})
        ns.link("add", ifname=space.mesh, kind="bridge")  # no dummy module here
        up = ns.link_lookup(ifname=space.up)[0]
        ns.addr("add", index=up, address="192.0.2.10", prefixlen=24)
        ns.link("set", index=up, state="up")
        ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")


@contextlib.asynccontextmanager
async def linked_namespace(mesh_interface: str = "formnet0") -> AsyncIterator[LinkedNamespace]:
    tag = f"{os.getpid() % 100000}{uuid.uuid4().hex[:3]}"
    space = LinkedNamespace(netns=f"ft-links-{tag}", up=f"ft{tag}u", down=f"ft{tag}d",
                            mesh=mesh_interface)
    try:
        await asyncio.to_thread(_create, space)
        yield space
    finally:
        with contextlib.suppress(FileNotFoundError, OSError):
            await asyncio.to_thread(netns.remove, space.netns)
