"""Simulated hosts for the mesh's tests and benchmark; the node never uses it, so it lives outside
the package (tests import it as `bench.support.testbed`, bench/mesh.py as `support.testbed`).

A simulated host is a network namespace plus its own mount namespace with a tmpfs on
/run/wireguard (the UAPI socket path is not per network namespace). An anchor process (`sleep`)
holds the mount namespace; the node code reaches it through `nsenter -t <anchor>` and
`/proc/<anchor>/root`. The underlay is a bridge in a switch namespace with a veth to each host,
so nothing is created in the caller's own namespace and everything goes with the namespaces."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
from dataclasses import dataclass, field
from pathlib import Path

from formation.node.net.host import NetHost
from formation.node.proc import run_command

UNDERLAY_NET = "198.18.0"  # RFC 2544 benchmarking range: never routed anywhere real
SWITCH_BRIDGE = "br0"
ANCHOR_SCRIPT = (
    "mkdir -p /run/wireguard && mount -t tmpfs -o mode=0755 formation-wg /run/wireguard "
    "&& ip link set lo up && echo ready && exec sleep infinity"
)


async def sh(*args: str, timeout_s: float = 15.0) -> str:
    done = await run_command(list(args), timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode()


@dataclass
class SimHost:
    name: str
    netns: str
    underlay_ip: str
    anchor: asyncio.subprocess.Process
    net: NetHost = field(init=False)

    def __post_init__(self) -> None:
        pid = str(self.anchor.pid)
        self.net = NetHost(
            netns=self.netns,
            exec_prefix=("nsenter", "-t", pid, "-m", "-n"),
            root=Path(f"/proc/{pid}/root"),
        )

    async def run(self, *args: str, timeout_s: float = 15.0) -> str:
        return await sh(*self.net.command(list(args)), timeout_s=timeout_s)


class Testbed:
    __test__ = False  # not a pytest test class, despite the name
    """Create with `async with Testbed(["a", "b"]) as bed:`; everything is removed on exit."""

    def __init__(self, names: list[str], prefix: str | None = None) -> None:
        self.prefix = prefix or f"fm{secrets.token_hex(2)}-"
        self.names = names
        self.switch = f"{self.prefix}sw"
        self.hosts: dict[str, SimHost] = {}
        self._namespaces: list[str] = []

    async def __aenter__(self) -> Testbed:
        try:
            await self._create_namespace(self.switch)
            await sh("ip", "-n", self.switch, "link", "add", SWITCH_BRIDGE, "type", "bridge")
            await sh("ip", "-n", self.switch, "link", "set", SWITCH_BRIDGE, "up")
            for number, name in enumerate(self.names, start=1):
                self.hosts[name] = await self._add_host(name, f"{UNDERLAY_NET}.{number}")
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _create_namespace(self, netns: str) -> None:
        await sh("ip", "netns", "add", netns)
        self._namespaces.append(netns)

    async def _add_host(self, name: str, ip: str) -> SimHost:
        netns = f"{self.prefix}{name}"
        await self._create_namespace(netns)
        port = f"port-{name}"[:15]
        await sh("ip", "-n", self.switch, "link", "add", "name", port, "type", "veth",
                 "peer", "name", "eth0", "netns", netns)
        await sh("ip", "-n", self.switch, "link", "set", port, "master", SWITCH_BRIDGE, "up")
        await sh("ip", "-n", netns, "addr", "add", f"{ip}/24", "dev", "eth0")
        await sh("ip", "-n", netns, "link", "set", "eth0", "up")
        anchor = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", netns, "sh", "-c", ANCHOR_SCRIPT,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        host = SimHost(name, netns, ip, anchor)
        self.hosts[name] = host
        assert anchor.stdout is not None
        line = await asyncio.wait_for(anchor.stdout.readline(), 10)
        if line.strip() != b"ready":
            err = (await anchor.stderr.read()).decode(errors="replace") if anchor.stderr else ""
            raise RuntimeError(f"simulated host {name}: mount namespace not ready: {err}")
        return host

    async def add_guest(self, host: str, guest: str, bridge: str, cidr: str,
                        gateway: str) -> NetHost:
        """A namespace standing in for a VM: a veth into `host`'s VM bridge, an address in the
        host's VM subnet and a default route through the bridge's gateway address."""
        netns = f"{self.prefix}{guest}"
        await self._create_namespace(netns)
        parent = self.hosts[host].netns
        port = f"vm-{guest}"[:15]
        await sh("ip", "-n", parent, "link", "add", "name", port, "type", "veth",
                 "peer", "name", "eth0", "netns", netns)
        await sh("ip", "-n", parent, "link", "set", port, "master", bridge, "up")
        await sh("ip", "-n", netns, "addr", "add", cidr, "dev", "eth0")
        await sh("ip", "-n", netns, "link", "set", "eth0", "up")
        await sh("ip", "-n", netns, "link", "set", "lo", "up")
        await sh("ip", "-n", netns, "route", "add", "default", "via", gateway)
        return NetHost(netns=netns, exec_prefix=("ip", "netns", "exec", netns))

    async def set_underlay_ip(self, name: str, ip: str) -> None:
        host = self.hosts[name]
        # deleting first: with promote_secondaries off, removing the primary address would
        # take a secondary added before it along
        await sh("ip", "-n", host.netns, "addr", "del", f"{host.underlay_ip}/24", "dev", "eth0")
        await sh("ip", "-n", host.netns, "addr", "add", f"{ip}/24", "dev", "eth0")
        host.underlay_ip = ip

    async def close(self) -> None:
        """Kills the anchors first (nothing can nsenter a simulated host after that), then
        every process left in the namespaces, until none is left, then the namespaces."""
        for host in self.hosts.values():
            with contextlib.suppress(ProcessLookupError):
                host.anchor.kill()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(host.anchor.wait(), 5)
        for _ in range(20):
            left = False
            for netns in self._namespaces:
                with contextlib.suppress(Exception):
                    for pid in (await sh("ip", "netns", "pids", netns)).split():
                        left = True
                        with contextlib.suppress(ProcessLookupError, ValueError):
                            os.kill(int(pid), signal.SIGKILL)
            if not left:
                break
            await asyncio.sleep(0.05)
        for netns in reversed(self._namespaces):
            with contextlib.suppress(Exception):
                await sh("ip", "netns", "del", netns)
        self._namespaces.clear()
