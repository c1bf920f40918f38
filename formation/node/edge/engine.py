"""The proxy engine (Caddy) as a supervised child of the node: started with the config of the
current routes, restarted with the then-current routes when it exits unasked (with a back-off),
changed through its admin API with only what changed, stopped gracefully.

The config file is rewritten before every change is sent, so a crash between the two still
comes back with the newest routes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from formation.errors import FormationError
from formation.node.edge.admin import AdminError, CaddyAdmin
from formation.node.edge.caddy_config import (
    HTTP_SERVER,
    HTTPS_SERVER,
    EnginePaths,
    FogCaFiles,
    caddy_config,
    unserved,
)
from formation.node.edge.cert_share import TlsShare
from formation.node.edge.metrics import AccessLogSink, RouteMetrics, upstreams_healthy
from formation.node.edge.routes import Route, validate_routes
from formation.node.edge.settings import EdgeSettings
from formation.node.edge.supervision import restart_loop, start_supervised, stop_process
from formation.node.net.host import LOCAL_HOST, NetHost
from formation.node.tasks import cancel_and_wait

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
STDERR_LINE_LIMIT = 1 << 16


class EngineError(FormationError):
    """Routes the engine cannot take, or an engine that does not come up."""


class CaddyEngine:
    def __init__(self, settings: EdgeSettings, run_dir: Path,
                 host: NetHost = LOCAL_HOST) -> None:
        """`host`: where the engine's process runs (a simulated host's namespace in tests);
        its sockets are files under `run_dir`, reachable from the node's namespace."""
        self.settings, self.host = settings, host
        self.paths = EnginePaths(run_dir)
        self.admin = CaddyAdmin(self.paths.admin_socket)
        self.metrics = RouteMetrics()
        self.sink = AccessLogSink(self.paths.access_socket, self.metrics)
        self.routes: list[Route] = []
        self.share: TlsShare | None = None  # certificates shared with other edges (cert_share)
        self.applied: dict[str, Any] | None = None  # the config the running engine has
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0  # how many times the process was started (restarts = starts - 1)
        self._supervisor: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._stopping = False
        self._up = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, routes: list[Route] | None = None) -> None:
        """Starts the engine serving `routes` and returns once its admin API answers."""
        if shutil.which(self.settings.caddy) is None:
            raise EngineError(f"edge.caddy: no program {self.settings.caddy!r} found; install "
                              "Debian's caddy package")
        self.routes = self._checked(routes or [])
        self.metrics.keep_only({r.name for r in self.routes})
        await asyncio.to_thread(self._prepare_dirs)
        await self.sink.start()
        try:
            self._supervisor = await start_supervised(self._supervise, self._up,
                                                      START_TIMEOUT_S, "edge-engine")
        except TimeoutError:
            await self.stop()
            raise EngineError(f"edge: caddy did not answer on {self.paths.admin_socket} "
                              f"within {START_TIMEOUT_S:g} s") from None

    def _prepare_dirs(self) -> None:
        self.paths.run_dir.mkdir(parents=True, exist_ok=True)
        self.paths.run_dir.chmod(0o700)  # certificates' private keys live under it
        self.paths.storage.mkdir(exist_ok=True)

    async def stop(self) -> None:
        self._stopping = True
        await cancel_and_wait(self._supervisor)
        self._supervisor = None
        await self.admin.close()
        await self.sink.stop()

    async def _supervise(self) -> None:
        await restart_loop(self._run_once, lambda: self._stopping,
                           self.settings.restart_max_s, "caddy",
                           lambda: self.process.returncode if self.process else None)

    async def _run_once(self) -> None:
        """One life of the process: config file with the current routes, start, wait for its
        admin socket, then for its exit. Cancelled: SIGTERM (Caddy drains), then SIGKILL."""
        config = caddy_config(self.routes, self.settings, self.paths, self.share)
        await asyncio.to_thread(self._write_config, config)
        with contextlib.suppress(FileNotFoundError):
            self.paths.admin_socket.unlink()
        home = str(self.paths.storage)
        env = {**os.environ, "HOME": home, "XDG_DATA_HOME": home, "XDG_CONFIG_HOME": home}
        self.process = process = await asyncio.create_subprocess_exec(
            *self.host.command([self.settings.caddy, "run", "--config",
                                str(self.paths.config_file)]),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, env=env, limit=STDERR_LINE_LIMIT)
        self.starts += 1
        logs = asyncio.create_task(self._forward_logs(process))
        try:
            while process.returncode is None and not await self.admin.alive():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await process.wait()
            if process.returncode is None:
                self.applied = config
                self._up.set()
            await process.wait()
        finally:
            self._up.clear()
            self.applied = None
            await stop_process(process)
            await asyncio.shield(logs)

    async def _forward_logs(self, process: asyncio.subprocess.Process) -> None:
        """Caddy's own log (JSON lines on stderr) into the node's log: warnings and errors
        as such, the rest at debug."""
        assert process.stderr is not None
        while True:
            try:
                line = await process.stderr.readline()
            except (ValueError, asyncio.LimitOverrunError):
                continue
            if not line:
                return
            try:
                entry = json.loads(line)
                if not isinstance(entry, dict):
                    raise ValueError("not an object")
            except ValueError:
                entry = {"msg": line.decode(errors="replace").strip()}
            level, message = str(entry.get("level", "info")), str(entry.get("msg", ""))
            detail = {k: entry[k] for k in ("logger", "error") if k in entry}
            if level in ("warn", "error", "fatal", "panic"):
                log.warning("caddy: %s", message, extra={"fields": detail})
            else:
                log.debug("caddy: %s", message, extra={"fields": detail})

    def _write_config(self, config: dict[str, Any]) -> None:
        tmp = self.paths.config_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(config, indent=1))
        tmp.chmod(0o600)
        tmp.replace(self.paths.config_file)

    # -- changes -----------------------------------------------------------------------------

    def _checked(self, routes: list[Route]) -> list[Route]:
        problems = validate_routes(routes) + unserved(routes)
        if problems:
            raise EngineError(problems[0] if len(problems) == 1 else
                              f"{problems[0]} (and {len(problems) - 1} more)")
        return list(routes)

    async def apply(self, routes: list[Route]) -> list[str]:
        """Makes the engine serve `routes`, sending it only what changed. Returns the admin
        paths it changed (empty: nothing to do). Raises EngineError for invalid routes,
        leaving the engine as it was."""
        routes = self._checked(routes)
        async with self._lock:
            self.routes = routes
            new = caddy_config(routes, self.settings, self.paths, self.share)
            await asyncio.to_thread(self._write_config, new)  # a restart takes these
            old = self.applied
            if old is None:
                return ["(engine restarting: it starts with these routes)"]
            changes = plan_changes(old, new)
            try:
                for method, path, body in changes:
                    await self.admin.request(method, path, body)
            except AdminError:
                if not self._up.is_set():
                    return ["(engine restarting: it starts with these routes)"]
                await self.admin.request("POST", "/load", new)
                changes = [("POST", "/load", new)]
            self.applied = new
            self.metrics.keep_only({r.name for r in routes})
            return [f"{method} {path}" for method, path, _ in changes]

    async def set_share(self, share: TlsShare | None) -> list[str]:
        """This edge's part in the certificates shared between edges (cert_share.py): applied
        with the current routes, like a change of routes."""
        self.share = share
        return await self.apply(self.routes)

    async def upstreams_healthy(self) -> dict[str, bool]:
        """Each backend's health as the engine's active checks see it (`host:port` -> ok)."""
        return upstreams_healthy(await self.admin.request("GET", "/metrics"))

    async def set_fog_ca(self, fog: FogCaFiles | None) -> list[str]:
        """Issue `.fog` certificates from the network CA in `fog`'s files from now on (None:
        Caddy's own CA). The TLS app changes: one /load, like a change of settings."""
        self.paths = dataclasses.replace(self.paths, fog=fog)
        return await self.apply(self.routes)


def plan_changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """The admin requests that turn config `old` into `new`: a changed route alone by its @id
    when the servers' route lists keep their order and host names; a whole server when routes
    come, go or move; the whole config when anything outside the servers changed. Each request
    is one graceful reload in Caddy: fewer requests, fewer reloads."""
    def without_servers(config: dict[str, Any]) -> dict[str, Any]:
        http = {k: v for k, v in config["apps"]["http"].items() if k != "servers"}
        return {**config, "apps": {**config["apps"], "http": http}}

    if without_servers(old) != without_servers(new):
        return [("POST", "/load", new)]
    changes: list[tuple[str, str, Any]] = []
    for name in (HTTP_SERVER, HTTPS_SERVER):
        before = old["apps"]["http"]["servers"][name]
        after = new["apps"]["http"]["servers"][name]
        if before == after:
            continue
        same_shape = ([r["@id"] for r in before["routes"]] == [r["@id"] for r in after["routes"]]
                      and {k: v for k, v in before.items() if k != "routes"}
                      == {k: v for k, v in after.items() if k != "routes"})
        if same_shape:
            changes.extend(("PATCH", f"/id/{b['@id']}", a)
                           for b, a in zip(before["routes"], after["routes"], strict=True)
                           if b != a)
        else:
            changes.append(("PATCH", f"/config/apps/http/servers/{name}", after))
    return changes
