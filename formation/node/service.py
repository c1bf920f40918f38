"""The node service's life: load identity, bind the API on the unix socket (and TCP when
configured), probe the host, and on SIGTERM finish in-flight requests and close cleanly.

The same class runs standalone (`formation node`) and embedded in the console's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from formation import __version__
from formation.api.models import Capabilities, IdentityInfo
from formation.api.routes import ENDPOINTS, SIGNED_BY_ANY_KEY
from formation.config.settings import NodeSettings
from formation.errors import FormationError
from formation.identity import NodeIdentity, load_or_create_identity
from formation.node.capabilities import CapabilityProber
from formation.node.component import Component, starts_after_ready
from formation.node.events import EventBus
from formation.node.guesses import GuessThrottle, guess_middleware
from formation.node.handlers import NodeHandlers
from formation.node.metrics import NodeMetrics
from formation.node.parts import Parts, build_parts
from formation.node.sd_notify import sd_notify
from formation.node.server import build_app, find_handler
from formation.node.tcp_site import TcpGuard

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 10.0


def _socket_in_use(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
        return True


class NodeService:
    def __init__(
        self,
        settings: NodeSettings,
        config_file: Path | None = None,
        components: list[Component] | None = None,
        parts: Parts | None = None,
    ) -> None:
        """The node runs `parts` (node/parts.py: built from the settings unless given), or,
        given `components` instead, only those (a test's own few, wired by the test)."""
        self.settings = settings
        self.parts: Parts | None = None
        if components is None:
            self.parts = build_parts(settings) if parts is None else parts
            components = self.parts.in_start_order()
        self.components = components
        self._started_components: list[Component] = []
        self.pending_components: list[Component] = []  # deferred until after READY
        self.config_file = config_file
        self.identity: NodeIdentity | None = None
        self._identity_info: IdentityInfo | None = None
        self.bus = EventBus()
        self.metrics = NodeMetrics()
        self.prober = CapabilityProber(settings.probe, settings.data_dir)
        self.started_at = datetime.now(UTC)
        self.started_monotonic = time.monotonic()
        self.key_authorities: list[Callable[[str], bool]] = []
        self.admin_authorities: list[Callable[[str], bool]] = []  # network admins' keys
        self.account_authorities: list[Callable[[str], bool]] = []  # accounts' (tenants') keys
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task] = set()
        self._tcp_address: str | None = None
        self.tcp_guard: TcpGuard | None = None  # connection caps and timeouts of TCP listeners
        self.unserved_endpoints: list[str] = []

    # identity and trust -------------------------------------------------------------------
    def identity_info(self) -> IdentityInfo:
        """The public parts of the identity. Computed once: the keys never change while the
        service runs, and deriving them (a curve conversion, two hashes) on every status
        request was most of its cost."""
        ident = self.identity
        assert ident is not None, "service not started"
        if self._identity_info is None:
            self._identity_info = IdentityInfo(
                node_id=ident.node_id, public_key=ident.public_key_hex,
                fingerprint=ident.fingerprint, wireguard_public_key=ident.wireguard_public_key,
            )
        return self._identity_info

    def is_known_key(self, key_hex: str) -> bool:
        """Who may sign requests to this node. Config trust for now; later parts (the state
        store's membership) add authorities."""
        if self.identity and key_hex == self.identity.public_key_hex:
            return True
        if key_hex in self.settings.trusted_keys:
            return True
        return any(authority(key_hex) for authority in self.key_authorities)

    def is_admin_key(self, key_hex: str) -> bool:
        """Whose signed requests reach the ADMIN routes: network admins of the replicated state."""
        return any(authority(key_hex) for authority in self.admin_authorities)

    def is_account_key(self, key_hex: str) -> bool:
        """Whose signed requests reach the TENANT routes: keys of accounts (replicated state)."""
        return any(authority(key_hex) for authority in self.account_authorities)

    def listen_addresses(self) -> list[str]:
        found = [f"unix:{self.settings.api.socket}"]
        if self._tcp_address:
            found.append(f"tcp:{self._tcp_address}")
        return found

    async def listen_also(self, host: str, port: int) -> web.TCPSite:
        """Serves the API on one more TCP address, after start: the mesh part's mesh address
        exists only once the state store allotted it. Not listed in `listen_addresses` (those
        are the underlay endpoints a node advertises). Stop it with `await site.stop()`;
        `stop()` of the service closes it too. Raises OSError when it cannot bind."""
        if self._runner is None:
            raise RuntimeError("the node API is not serving yet")
        assert self.tcp_guard is not None
        site = self.tcp_guard.site(self._runner, host, port)
        await site.start()
        return site

    def publish(self, topic: str, kind: str, data: dict | None = None) -> None:
        self.bus.publish(topic, kind, data)
        self.metrics.events.labels(topic).inc()

    # lifecycle ------------------------------------------------------------------------------
    async def start(self, defer: bool = False) -> None:
        """Start every part, then serve. With `defer`, the parts marked `after_ready` are left
        for `start_deferred()`: the API answers (their endpoints with 503) while they start."""
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.identity = await asyncio.to_thread(load_or_create_identity, s.data_dir)
        for component in self.components:
            if defer and starts_after_ready(component):
                self.pending_components.append(component)
            else:
                await self._start_component(component)
        handlers = [NodeHandlers(self)] + [
            h for c in self.components if (h := c.api_handlers()) is not None
        ]
        self.unserved_endpoints = [
            e.name for e in ENDPOINTS if find_handler(handlers, e.name) is None
        ]
        if self.unserved_endpoints:
            log.info("parts not running; their endpoints answer 503", extra={"fields": {
                "endpoints": ",".join(self.unserved_endpoints)}})
        app = build_app(handlers, self.metrics, self.is_known_key, s.api.clock_skew_s,
                        node_key=self.identity.public_key_hex, is_admin=self.is_admin_key,
                        is_account=self.is_account_key)
        app.on_shutdown.append(self._on_shutdown)
        app.middlewares.insert(0, guess_middleware(  # outermost: it sees the final status
            GuessThrottle(s.api.join_guesses, s.api.join_guess_every_s), SIGNED_BY_ANY_KEY))
        self.tcp_guard = self.tcp_guard or TcpGuard(s.api, self.metrics.registry)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S,
                                     handle_signals=False)
        await self._runner.setup()
        await self._bind_unix(self._runner, s.api.socket, s.api.socket_mode, s.api.socket_group)
        if s.api.listen:
            host, _, port = s.api.listen.rpartition(":")
            site = self.tcp_guard.site(self._runner, host.strip("[]"), int(port))
            try:
                await site.start()
            except OSError as exc:
                await self._runner.cleanup()
                await self._stop_components()
                raise FormationError(f"cannot listen on {s.api.listen}: {exc.strerror}") from None
            bound = next(a for a in self._runner.addresses if isinstance(a, tuple))
            self._tcp_address = f"{bound[0]}:{bound[1]}"
        self.started_at = datetime.now(UTC)
        self.started_monotonic = time.monotonic()
        log.info("node service started", extra={"fields": {
            "node_id": self.identity.node_id, "name": s.name, "version": __version__,
            "listen": ",".join(self.listen_addresses())}})
        self.publish("node", "started", {"node_id": self.identity.node_id})
        self.spawn(self.probe_capabilities())

    async def start_deferred(self) -> None:
        """The parts `start(defer=True)` left, in their order. A part that fails to start
        stops the others, as at start, and its error propagates: the node exits and its
        supervisor restarts it."""
        while self.pending_components:
            component = self.pending_components[0]
            await self._start_component(component)
            self.pending_components.pop(0)

    async def _start_component(self, component: Component) -> None:
        try:
            await component.start(self)
        except BaseException:
            await self._stop_components()
            raise
        self._started_components.append(component)

    async def _bind_unix(self, runner: web.AppRunner, path: Path, mode: int,
                         group: str | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        if path.exists() or path.is_symlink():
            if await asyncio.to_thread(_socket_in_use, path):
                await runner.cleanup()
                await self._stop_components()
                raise FormationError(f"another node service is already running at {path}")
            path.unlink()
        try:
            gid = grp.getgrnam(group).gr_gid if group else -1
        except KeyError:
            await runner.cleanup()
            await self._stop_components()
            raise FormationError(f"api.socket_group: no group named {group!r} on this host "
                                 "(`formation ssh-setup` creates it)") from None
        await web.UnixSite(runner, str(path)).start()
        os.chown(path, -1, gid)  # the group may connect: the SSH console user is in it
        os.chmod(path, mode)

    def spawn(self, coro) -> asyncio.Task:
        """Background work owned by the service: cancelled on stop, failures logged."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    async def probe_capabilities(self, only: Collection[str] | None = None) -> Capabilities:
        result = await self.prober.probe(only)
        self.publish("capabilities", "probed", result.model_dump(mode="json"))
        return result

    async def _on_shutdown(self, _: web.Application) -> None:
        self.bus.close()

    async def stop(self) -> None:
        await self._cancel_tasks()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.tcp_guard is not None:
            self.tcp_guard.close()
        with contextlib.suppress(FileNotFoundError):
            self.settings.api.socket.unlink()
        await self._stop_components()
        log.info("node service stopped")

    async def _cancel_tasks(self) -> None:
        """Cancels the background work and waits for it, but not forever: a task that will
        not end (a lost cancellation) is named in the log and left, so that the service
        still stops and its parts still close."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_TIMEOUT_S)
        for task in pending:
            log.error("background task did not end when cancelled",
                      extra={"fields": {"task": repr(task.get_coro())}})

    async def _stop_components(self) -> None:
        while self._started_components:
            component = self._started_components.pop()
            try:
                await component.stop()
            except Exception as exc:
                log.error("component failed to stop", exc_info=exc,
                          extra={"fields": {"component": component.name}})

    async def run_until_signalled(self) -> None:
        """`formation node`: serve until SIGTERM or SIGINT, then shut down gracefully."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start(defer=True)
        sd_notify("READY=1", unset_environment=True)  # the only message it sends
        try:
            if deferred := [c.name for c in self.pending_components]:
                await self.start_deferred()
                log.info("started after ready", extra={"fields": {"parts": ",".join(deferred)}})
            await stop.wait()
            log.info("stopping: finishing in-flight requests")
        finally:
            await self.stop()
