"""Where network operations happen. On a real node that is this host; in tests and benchmarks a
simulated host is a network namespace plus a mount namespace (its own /run/wireguard), reached
from the test process through an exec prefix (`nsenter`) and `/proc/<pid>/root`."""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from pyroute2 import AsyncIPRoute

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
T = TypeVar("T")

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def call_in_netns(netns: str | None, func: Callable[[], T]) -> T:
    """Run `func` in this thread with the thread switched into `netns`, then switch back.
    Blocking: call it through asyncio.to_thread. Sockets made inside stay in that netns."""
    if netns is None:
        return func()
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(NETNS_DIR / netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target)
        try:
            return func()
        finally:
            _setns(own)
    finally:
        os.close(own)
        os.close(target)


@dataclass(frozen=True)
class NetHost:
    """A host's network context. The defaults are this host: no netns, no prefix, root `/`."""

    netns: str | None = None
    exec_prefix: tuple[str, ...] = ()
    root: Path = field(default=Path("/"))

    def path(self, absolute: str) -> Path:
        """A path of this host's filesystem, as seen from this process."""
        return self.root / absolute.lstrip("/")

    def command(self, args: list[str]) -> list[str]:
        return [*self.exec_prefix, *args]

    def iproute(self) -> AsyncIPRoute:
        # pyroute2 is imported here, not above: it takes seconds to import under emulation and a
        # node with neither mesh nor DNS never needs it (the appliance's boot waits for it).
        from pyroute2 import AsyncIPRoute

        # flags=0: pyroute2 would otherwise create a namespace of that name if it is gone
        return AsyncIPRoute(netns=self.netns, flags=0) if self.netns else AsyncIPRoute()

    async def socket(self, family: int, kind: int) -> socket.socket:
        """A socket living in this host's network namespace, non-blocking, for asyncio."""
        sock = await asyncio.to_thread(
            call_in_netns, self.netns, lambda: socket.socket(family, kind))
        sock.setblocking(False)
        return sock

    async def write_sysctl(self, name: str, value: str) -> None:
        """/proc/sys/net is per network namespace: write it from inside the namespace."""
        path = Path("/proc/sys") / name.replace(".", "/")

        def write() -> None:
            with open(path, "w") as handle:
                handle.write(value)

        await asyncio.to_thread(call_in_netns, self.netns, write)

    async def read_sysctl(self, name: str) -> str:
        path = Path("/proc/sys") / name.replace(".", "/")
        return await asyncio.to_thread(call_in_netns, self.netns, lambda: path.read_text().strip())


LOCAL_HOST = NetHost()
