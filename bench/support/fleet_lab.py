"""A 3-host lab for the fleet tests and bench/fleet.py (issue 16): real node processes with the
WireGuard mesh (wireguard-go) and DNS on, a network founded on h1 that h2 and h3 join, the test
guest imported on h1, and what a person does with VMs there: create one pinned to a host, wait
until every host shows it Running on that host, type a command on its serial console and read
the answer from its serial log.

Shared by tests (as `bench.support.fleet_lab`) and the benchmark (as `support.fleet_lab`): a
benchmark must not import tests/, and the two must drive the lab the same way. Nothing here
asserts; a condition not met in time raises FleetError saying what was awaited."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from formation.api import mesh_routes, state_routes, vm_routes
from formation.api.client import ApiError
from formation.api.vm_models import VmCreate
from formation.lab import Lab

from .guest_kit import GUEST_UP

T = TypeVar("T")

HOSTS = ("h1", "h2", "h3")
NETWORK = "lab"
CIDR = "10.42.0.0/16"
ZONE = "fog"
MEMORY_MB = 512  # the API's minimum
BOOT_S = 120  # the guest boots in 3-15 s under TCG, longer on a loaded machine
OVERRIDES: dict[str, Any] = {
    "mesh": {"enabled": True, "backend": "wireguard-go", "status_interval_s": 1.0},
    "dns": {"enabled": True},  # port 53: the guests' resolver is their host's VM gateway
    "vmm": {"backend": "qemu", "stop_grace_s": 2, "boot_timeout_s": BOOT_S},
    "resources": {"cpus": 2, "memory_mb": 2048, "disk_gb": 20},
}


class FleetError(Exception):
    """Something the lab did not do in time; the message says what and what was last seen."""


async def poll(check: Callable[[], Awaitable[T | None]], timeout_s: float, what: str,
               every_s: float = 0.25) -> T:
    """The first truthy result of `check`, or FleetError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise FleetError(f"not within {timeout_s:g} s: {what} (last seen: {result!r})")
        await asyncio.sleep(every_s)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class Fleet:
    """The lab with its network founded and the guest imported (see `up`)."""

    lab: Lab
    kit: Any  # bench.support.guest_kit.GuestKit
    nodes: dict[str, dict] = field(default_factory=dict)  # h1's nodes view by host name
    image: str = "guest"

    # entering hosts ---------------------------------------------------------------------------
    async def run(self, host: str, *argv: str, timeout_s: float = 60
                  ) -> subprocess.CompletedProcess[str]:
        """A command inside the host's namespaces."""
        return await asyncio.to_thread(self.lab.exec, host, list(argv), capture_output=True,
                                       text=True, timeout=timeout_s)

    async def cli(self, host: str, *args: str, timeout_s: float = 60) -> str:
        """`formation ARGS` in the host; its stdout, or FleetError with its stderr."""
        out = await self.run(host, "formation", *args, timeout_s=timeout_s)
        if out.returncode != 0:
            raise FleetError(f"{host}: formation {' '.join(args[:2])}: {out.stderr.strip()}")
        return out.stdout

    async def call(self, host: str, endpoint: Any, body: Any = None, **params: str) -> Any:
        async with self.lab.client(host, timeout_s=30) as client:
            return await client.call(endpoint, body, **params)

    def mesh_ip(self, host: str) -> str:
        return str(self.nodes[host]["address"]).split("/")[0]

    def host_of_key(self, key: str | None) -> str | None:
        return next((h for h, n in self.nodes.items() if n.get("key") == key), None)

    # founding -----------------------------------------------------------------------------
    async def found(self, timeout_s: float = 90) -> None:
        """h1 creates the network, h2 and h3 join with invites (at once), every pair of hosts
        has a WireGuard handshake, and h1 holds the guest image."""
        await self.cli("h1", "network", "create", NETWORK, "--cidr", CIDR, "--json")
        tokens = [json.loads(await self.cli("h1", "invite", "create", "--role", "admin",
                                                   "--json"))["token"]
                  for _ in HOSTS[1:]]
        await asyncio.gather(*(self.cli(h, "join", t) for h, t in zip(HOSTS[1:], tokens,
                                                                      strict=True)))
        fields = ("address", "wg_endpoints", "wireguard_key")

        async def complete() -> dict[str, dict] | None:
            view = await self.call("h1", state_routes.state_view, collection="nodes")
            nodes = {str(n.get("name")): n for n in view.items}
            ok = all(h in nodes and all(nodes[h].get(f) for f in fields) for h in HOSTS)
            return nodes if ok else None

        self.nodes = await poll(complete, timeout_s, f"{HOSTS} in h1's nodes view with {fields}")

        async def meshed() -> bool:
            for host in HOSTS:
                status = await self.call(host, mesh_routes.mesh_status)
                ages = {p.public_key: p.handshake_age_s for p in status.peers}
                want = {self.nodes[o]["wireguard_key"] for o in HOSTS if o != host}
                if not status.up or not want <= set(ages) or any(ages[k] is None for k in want):
                    return False
            return True

        await poll(meshed, timeout_s, "a WireGuard handshake between every pair of hosts", 0.5)
        kit = self.kit
        await self.cli("h1", "image", "import", str(kit.kernel), "--initrd", str(kit.initrd),
                       "--disk", str(kit.disk), "--name", self.image, "--cmdline", kit.cmdline,
                       "--json", timeout_s=120)

    # instances ----------------------------------------------------------------------------
    async def create(self, name: str, host: str, *, via: str = "h1", cmdline: str | None = None,
                     **spec: Any) -> dict[str, Any]:
        """An instance of the guest pinned to `host`, created through `via`'s API."""
        body = VmCreate(image=self.image, name=name, memory_mb=MEMORY_MB, node=host,
                        cmdline=cmdline, **spec)
        return (await self.call(via, vm_routes.vm_create, body)).model_dump(mode="json")

    async def listed(self, host: str) -> dict[str, dict[str, Any]]:
        """Every instance by name as `host` lists it ({} while its VM part is still starting)."""
        try:
            found = await self.call(host, vm_routes.vm_list)
        except ApiError as exc:
            if exc.status != 503:
                raise
            return {}
        return {i.name: i.model_dump(mode="json") for i in found.instances}

    async def running(self, name: str, host: str | None = None, timeout_s: float = BOOT_S,
                      hosts: tuple[str, ...] = HOSTS, addressed: bool = True,
                      away_from: str | None = None) -> dict[str, Any]:
        """Waits until every host in `hosts` lists `name` Running on the same node (`host` when
        given; not `away_from` when given: it moved), with an address unless `addressed` is
        False; returns the instance as the first of `hosts` lists it."""
        seen: list[Any] = []

        async def everywhere() -> dict[str, Any] | None:
            views = [(await self.listed(h)).get(name, {}) for h in hosts]
            seen[:] = [{k: v.get(k) for k in ("state", "reason", "node_name", "address")}
                       for v in views]
            on = {v.get("node_name") for v in views}
            if len(on) != 1 or (host is not None and on != {host}) or away_from in on:
                return None
            ok = all(v.get("state") == "running" and (v.get("address") or not addressed)
                     for v in views)
            return views[0] if ok else None

        try:
            return await poll(everywhere, timeout_s, f"{name} running", 0.5)
        except FleetError:
            raise FleetError(f"{name} not running on {host or 'one node'} with an address "
                             f"within {timeout_s:g} s; {hosts} see {seen}; "
                             f"{self.vm_log_lines()}") from None

    async def delete(self, name: str, via: str = "h1") -> None:
        await self.call(via, vm_routes.vm_delete, instance=name)

    async def gone(self, name: str, timeout_s: float = 60) -> None:
        """Until no host lists `name` any more."""
        async def absent() -> bool:
            for host in HOSTS:
                if name in await self.listed(host):
                    return False
            return True

        await poll(absent, timeout_s, f"{name} gone from every host's list")

    # serial console -----------------------------------------------------------------------
    def serial_log(self, host: str, instance_id: str) -> Path:
        """The guest's serial log on the host running it (formation/node/vmm/workdir.py: the
        node's data_dir/vms/<16 hex of the id>/serial.log; the lab's data dirs are on this
        machine's filesystem)."""
        index = self.lab.host(host).index
        return self.lab.names.host_dir(index) / "data" / "vms" / instance_id[:16] / "serial.log"

    async def type(self, inst: dict[str, Any], command: str, timeout_s: float = 60,
                   via: str | None = None, booted: bool = True) -> tuple[int, str]:
        """Types `command` on the instance's serial console (the node's console WebSocket on
        `via`, relayed to the host running it; default: that host itself, so nothing typed or
        answered crosses the underlay) and waits for its end in the serial log on that host.
        Returns (exit status, output). Unless `booted` is False, first waits for the guest's
        GUEST_UP line: what is typed while the kernel boots, before it opened the console, is
        lost. The end marker is typed split by quotes, so the
        shell's echo of the typed line never matches it: only running the command does."""
        if booted:
            await self.serial_has(inst, GUEST_UP, timeout_s)
        tag = secrets.token_hex(4)
        log = self.serial_log(str(inst["node_name"]), str(inst["id"]))
        start = log.stat().st_size if log.exists() else 0
        line = f"{command}; echo \"<\"\"<{tag} rc=$?>\"\">\"\n"
        done = re.compile(rf"<<{tag} rc=(\d+)>>")

        async def finished() -> tuple[int, str] | None:
            text = await asyncio.to_thread(_read_from, log, start)
            found = done.search(text)
            if found is None:
                return None
            body = text[:found.start()]
            # drop the shell's echo of the typed line (and anything before it)
            echoed = body.find(f'<""<{tag}')
            if echoed >= 0:
                body = body[echoed:].split("\n", 1)[1] if "\n" in body[echoed:] else ""
            return int(found.group(1)), body.replace("\r", "")

        async with self.console(inst["name"], via or str(inst["node_name"])) as ws:
            await ws.send_bytes(line.encode())
            return await poll(finished, timeout_s, f"`{command}` answered on {inst['name']}'s "
                              "serial console", 0.2)

    @contextlib.asynccontextmanager
    async def console(self, name: str, via: str = "h1") -> AsyncIterator[Any]:
        """The guest's console WebSocket through `via`'s API. Keep it open until the guest has
        read what was sent: QEMU takes bytes from its console socket only as fast as the
        emulated UART accepts them, and drops what is still unread when the socket closes."""
        connector = aiohttp.UnixConnector(path=str(self.lab.socket_path(via)))
        async with aiohttp.ClientSession(connector=connector) as session:
            try:
                ws = await session.ws_connect(f"http://node/v1/vms/{name}/console")
            except aiohttp.WSServerHandshakeError as exc:
                raise FleetError(f"console of {name} via {via}: {exc.status} {exc.message}") \
                    from None
            drain = asyncio.ensure_future(_drain(ws))  # its output is read from the log
            try:
                yield ws
            finally:
                drain.cancel()
                await asyncio.gather(drain, return_exceptions=True)
                await ws.close()

    async def serial_has(self, inst: dict[str, Any], needle: str, timeout_s: float = 60) -> str:
        log = self.serial_log(str(inst["node_name"]), str(inst["id"]))

        async def seen() -> str | None:
            text = await asyncio.to_thread(_read_from, log, 0)
            return text if needle in text else None

        return await poll(seen, timeout_s, f"{needle!r} in {inst['name']}'s serial log", 0.2)

    # diagnostics --------------------------------------------------------------------------
    def vm_log_lines(self, keep: int = 12) -> str:
        """The tail of each host's node log about VMs, networking and DNS (for failures)."""
        found = []
        for host in HOSTS:
            path = self.lab.log_path(host)
            lines = path.read_text(errors="replace").splitlines() if path.exists() else []
            words = ("vm", "net", "dns", "error", "warn")
            found += [f"{host}: {line[:300]}" for line in lines
                      if any(w in line.lower() for w in words)][-keep:]
        return "\n".join(found)


async def _drain(ws: Any) -> None:
    async for _ in ws:
        pass


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


async def up(kit: Any, overrides: dict[str, Any] | None = None) -> Fleet:
    """A lab of HOSTS with the fleet settings, founded, the guest imported. The caller owns
    `fleet.lab` and must `down()` it (also when this raises: it is taken down here then)."""
    lab = Lab(len(HOSTS), pretrust=False,
              node_overrides=deep_merge(OVERRIDES, overrides or {}))
    await asyncio.to_thread(lab.up)
    fleet = Fleet(lab, kit)
    try:
        await fleet.found()
    except BaseException:
        await asyncio.to_thread(lab.down)
        raise
    return fleet

