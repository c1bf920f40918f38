"""The wireguard-go backend: the node starts `wireguard-go -f <if>`, restarts it when it dies
(re-applying key, port, peers, addresses and routes: a new process is a new, empty device), and
configures it only through its UAPI socket."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import time
from collections.abc import Callable

from formation.node.net import links
from formation.node.net.backend_links import LinkMixin
from formation.node.net.host import LOCAL_HOST, NetHost
from formation.node.net.peers import InterfaceStatus, PeerConfig, WireGuardError, key_to_hex
from formation.node.net.uapi import UapiClient, peer_lines, remove_peer_lines
from formation.node.tasks import cancel_and_wait

log = logging.getLogger(__name__)

START_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 5.0
RESTART_DELAYS_S = (0.2, 1.0, 2.0, 5.0, 10.0)


class WireGuardGoBackend(LinkMixin):
    kind = "wireguard-go"

    def __init__(self, name: str, host: NetHost = LOCAL_HOST, binary: str = "wireguard-go",
                 on_restart: Callable[[int], None] | None = None) -> None:
        self.name = name
        self.host = host
        self.binary = binary
        self.on_restart = on_restart
        self.socket_path = host.path(f"/run/wireguard/{name}.sock")
        self.uapi = UapiClient(self.socket_path, name)
        self.restarts = 0
        self._init_links()
        self._device: list[str] = []
        self._peers: dict[str, PeerConfig] = {}
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        self._supervisor: asyncio.Task | None = None
        self._drain: asyncio.Task | None = None
        self._stopping = False

    # process ----------------------------------------------------------------------------------
    async def _socket_answers(self) -> bool:
        try:
            await self.uapi.get()
        except WireGuardError:
            return False
        return True

    async def _start_process(self) -> None:
        if self.socket_path.exists():
            if await self._socket_answers():
                raise WireGuardError(
                    f"{self.name} is already run by another wireguard-go ({self.socket_path})")
            self.socket_path.unlink()
        await links.delete_link(self.host, self.name)  # a stale device from a killed process
        env = {**os.environ, "WG_PROCESS_FOREGROUND": "1"}
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self.host.command([self.binary, "-f", self.name]), env=env,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise WireGuardError(f"cannot start {self.binary}: {exc.strerror}") from None
        self._drain = asyncio.get_running_loop().create_task(self._drain_stderr(self._proc))
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (self.socket_path.exists() and await self._socket_answers()):
            if self._proc.returncode is not None or time.monotonic() > deadline:
                await self._kill()
                await self._drain
                tail = " | ".join(self._stderr) or "no output"
                raise WireGuardError(f"{self.binary} did not open {self.socket_path}: {tail}")
            await asyncio.sleep(0.02)

    async def _drain_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            line = raw.decode(errors="replace").strip()
            if line:
                self._stderr.append(line)
                log.debug("wireguard-go: %s", line)

    async def _kill(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def _configure(self) -> None:
        """Everything this backend was told, applied to a fresh device, one peer at a time."""
        await self.uapi.set(self._device)
        for peer in self._peers.values():
            await self.uapi.set(peer_lines(peer))
        await self._restore_links()

    async def _supervise(self) -> None:
        attempt = 0
        while not self._stopping:
            assert self._proc is not None
            code = await self._proc.wait()
            if self._stopping:
                return
            log.warning("wireguard-go exited; restarting", extra={"fields": {
                "interface": self.name, "code": code, "stderr": " | ".join(self._stderr)}})
            while not self._stopping:
                await asyncio.sleep(RESTART_DELAYS_S[min(attempt, len(RESTART_DELAYS_S) - 1)])
                attempt += 1
                try:
                    await self._start_process()
                    await self._configure()
                except (WireGuardError, OSError) as exc:
                    log.error("wireguard-go restart failed", extra={"fields": {
                        "interface": self.name, "error": str(exc)}})
                    continue
                self.restarts += 1
                attempt = 0
                if self.on_restart:
                    self.on_restart(self.restarts)
                break

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.returncode is None else None

    # the backend interface ----------------------------------------------------------------------
    async def create(self, private_key: str, listen_port: int) -> None:
        if self._supervisor is not None:
            raise WireGuardError(f"{self.name} was already created by this backend")
        self._device = [f"private_key={key_to_hex(private_key)}", f"listen_port={listen_port}"]
        self._stopping = False
        await self._start_process()
        try:
            await self._configure()
        except BaseException:
            await self._kill()
            raise
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())

    async def set_peer(self, peer: PeerConfig) -> None:
        await self.uapi.set(peer_lines(peer))
        self._peers[peer.public_key] = peer

    async def remove_peer(self, public_key: str) -> None:
        await self.uapi.set(remove_peer_lines(public_key))
        self._peers.pop(public_key, None)

    async def status(self) -> InterfaceStatus:
        return await self.uapi.get()

    async def delete(self) -> None:
        self._stopping = True
        await cancel_and_wait(self._supervisor)
        self._supervisor = None
        await self._kill()
        with contextlib.suppress(OSError):  # the device usually went with the process
            await links.delete_link(self.host, self.name)
        with contextlib.suppress(OSError):
            self.socket_path.unlink()
