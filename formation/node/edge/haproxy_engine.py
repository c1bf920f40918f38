"""HAProxy (Debian's 2.6) as a supervised child of the node, serving the tcp routes Caddy cannot:
started in master-worker mode (`-W`) with the config of the current tcp routes, restarted with
the then-current routes when it exits unasked (with a back-off), reloaded when the routes
change, stopped with the node (or when the last tcp route goes).

A reload (SIGUSR2 to the master, which re-reads the config file) forks a new worker that takes
the listening sockets from the old one over HAProxy's internal socket pair (`-x sockpair@`, so
no connect is refused), while the old worker keeps serving its established connections until
they close: changing a route drops no session. The master socket's `show proc` tells when the
reload is done or failed, the stats socket's `show stat` that the new worker serves the new
routes. A new config is checked (`haproxy -c`) before it replaces the file, so one HAProxy would
refuse never reaches the running engine; the file is what a restart after a crash takes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import signal
from pathlib import Path

from formation.errors import FormationError
from formation.node.edge.haproxy_config import (
    BACKEND_PREFIX,
    FRONTEND_PREFIX,
    HaproxyPaths,
    expected_proxies,
    expected_servers,
    haproxy_config,
    port_problems,
    server_name,
    tcp_routes,
)
from formation.node.edge.haproxy_metrics import TcpRouteCounters
from formation.node.edge.haproxy_stats import (
    ProcInfo,
    StatRow,
    normal_address,
    parse_proc,
    parse_stat,
)
from formation.node.edge.routes import Route, validate_routes
from formation.node.edge.settings import EdgeSettings
from formation.node.edge.supervision import restart_loop, start_supervised, stop_process
from formation.node.net.host import LOCAL_HOST, NetHost
from formation.node.tasks import cancel_and_wait

log = logging.getLogger(__name__)

HAPROXY = "haproxy"
START_TIMEOUT_S = 30.0
RELOAD_TIMEOUT_S = 30.0
SOCKET_TIMEOUT_S = 5.0
POLL_S = 0.05
ANSWER_LIMIT = 1 << 22  # a `show stat` of many routes fits; a runaway answer does not
STDERR_LINE_LIMIT = 1 << 16
_LEVEL = re.compile(r"^\[(\w+)\]")
# what every reload prints at WARNING level: the old worker's proxies stopping, and its exit
_ROUTINE = re.compile(r"Proxy \S+ stopped|Former worker \(\d+\) exited with code 0")


class HaproxyError(FormationError):
    """tcp routes HAProxy cannot take, or an HAProxy that does not come up."""


async def cli(socket_path: Path, command: str) -> str:
    """One command on an HAProxy CLI socket (master or stats): its whole answer."""
    async with asyncio.timeout(SOCKET_TIMEOUT_S):
        reader, writer = await asyncio.open_unix_connection(str(socket_path))
        try:
            writer.write(command.encode() + b"\n")
            await writer.drain()
            answer = b""
            # an answer ends with an empty line; the stats socket then closes, the master
            # socket (2.6) keeps the connection open
            while not answer.endswith(b"\n\n") and (chunk := await reader.read(1 << 16)):
                answer += chunk
                if len(answer) > ANSWER_LIMIT:
                    raise HaproxyError(f"edge: haproxy's answer to {command!r} is too long")
            return answer.decode(errors="replace")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class HaproxyEngine:
    def __init__(self, settings: EdgeSettings, run_dir: Path, host: NetHost = LOCAL_HOST,
                 program: str = HAPROXY) -> None:
        """`host`: where the process runs (a test's namespace); its sockets and config are
        files under `run_dir`, shared with Caddy's (distinct names)."""
        self.settings, self.host, self.program = settings, host, program
        self.paths = HaproxyPaths(run_dir)
        self.routes: list[Route] = []
        self.applied: str | None = None  # the config the running worker serves
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.reloads = 0
        self.counters = TcpRouteCounters()
        self._supervisor: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._stopping = False
        self._up = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, routes: list[Route]) -> None:
        """Starts HAProxy serving the tcp routes of `routes`; returns once it serves them."""
        if shutil.which(self.program) is None:
            raise HaproxyError(f"edge: no program {self.program!r} found; tcp routes need "
                               "Debian's haproxy package")
        self.routes = self._checked(routes)
        await asyncio.to_thread(self._prepare_dir)
        try:
            self._supervisor = await start_supervised(self._supervise, self._up,
                                                      START_TIMEOUT_S, "edge-haproxy")
        except TimeoutError:
            await self.stop()
            raise HaproxyError(f"edge: haproxy did not answer on {self.paths.master_socket} "
                               f"within {START_TIMEOUT_S:g} s") from None

    def _prepare_dir(self) -> None:
        self.paths.run_dir.mkdir(parents=True, exist_ok=True)
        self.paths.run_dir.chmod(0o700)

    async def stop(self) -> None:
        self._stopping = True
        await cancel_and_wait(self._supervisor)
        self._supervisor = None

    async def _supervise(self) -> None:
        await restart_loop(self._run_once, lambda: self._stopping,
                           self.settings.restart_max_s, "haproxy",
                           lambda: self.process.returncode if self.process else None)

    async def _run_once(self) -> None:
        """One life of the master: config file with the current routes, start, wait until its
        worker serves them, then for its exit. Cancelled: SIGTERM, then SIGKILL."""
        config = haproxy_config(self.routes, self.settings, self.paths)
        await asyncio.to_thread(self._write_config, config, self.paths.config_file)
        for stale in (self.paths.master_socket, self.paths.stats_socket):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        self.process = process = await asyncio.create_subprocess_exec(
            *self.host.command([self.program, "-W", "-S",
                                f"{self.paths.master_socket},mode,600",
                                "-f", str(self.paths.config_file)]),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, limit=STDERR_LINE_LIMIT)
        self.starts += 1
        logs = asyncio.create_task(self._forward_logs(process))
        try:
            while process.returncode is None and not await self._serving(self.routes):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_S):
                        await process.wait()
            if process.returncode is None:
                self.applied = config
                self.counters.new_worker()
                self._up.set()
            await process.wait()
        finally:
            self._up.clear()
            self.applied = None
            await stop_process(process)
            await asyncio.shield(logs)

    async def _forward_logs(self, process: asyncio.subprocess.Process) -> None:
        """HAProxy's own log lines (`[LEVEL] (pid) : message` on stderr) into the node's log:
        warnings and alerts as warnings (a backend going down says so), the rest at debug, and
        what every reload or our own stop makes it say too."""
        assert process.stderr is not None
        while True:
            try:
                line = await process.stderr.readline()
            except (ValueError, asyncio.LimitOverrunError):
                continue
            if not line:
                return
            text = line.decode(errors="replace").strip()
            level = _LEVEL.match(text)
            if level and level.group(1) in ("WARNING", "ALERT", "EMERG") \
                    and not _ROUTINE.search(text) and not self._stopping:
                log.warning("haproxy: %s", text)
            else:
                log.debug("haproxy: %s", text)

    @staticmethod
    def _write_config(config: str, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(config)
        tmp.chmod(0o600)
        tmp.replace(path)

    # -- what runs ---------------------------------------------------------------------------

    async def proc(self) -> ProcInfo | None:
        try:
            return parse_proc(await cli(self.paths.master_socket, "show proc"))
        except (OSError, TimeoutError, HaproxyError):
            return None

    async def stat(self) -> list[StatRow] | None:
        """The current worker's `show stat` rows; None while no worker answers."""
        try:
            answer = await cli(self.paths.stats_socket, "show stat")
        except (OSError, TimeoutError, HaproxyError):
            return None
        return parse_stat(answer) if answer.startswith("# ") else None

    async def _serving(self, routes: list[Route]) -> bool:
        """Whether a worker answers with exactly the proxies and servers of `routes`."""
        rows = await self.stat()
        if rows is None:
            return False
        ours = [r for r in rows if r.proxy.startswith((FRONTEND_PREFIX, BACKEND_PREFIX))]
        servers = {(r.proxy, r.server, normal_address(r.address)) for r in ours
                   if r.server not in ("FRONTEND", "BACKEND")}
        wanted = {(proxy, server, normal_address(dial))
                  for proxy, server, dial in expected_servers(routes)}
        return {r.proxy for r in ours} == expected_proxies(routes) and servers == wanted

    async def upstreams_healthy(self) -> dict[str, bool]:
        """Each backend's health as HAProxy's checks see it (`host:port` -> ok), keyed like
        Caddy's so the edge shows both alike; the same read updates the routes' counters."""
        rows = await self.stat()
        if rows is None:
            return {}
        self.counters.observe(rows, {r.name for r in self.routes})
        dials = {(f"{BACKEND_PREFIX}{r.name}", server_name(i)): b.dial
                 for r in self.routes for i, b in enumerate(r.backends)}
        out: dict[str, bool] = {}
        for row in rows:
            dial = dials.get((row.proxy, row.server))
            if dial is not None:
                out[dial] = out.get(dial, False) or row.up
        return out

    # -- changes -----------------------------------------------------------------------------

    def _checked(self, routes: list[Route]) -> list[Route]:
        problems = validate_routes(routes) + port_problems(routes, self.settings)
        if problems:
            raise HaproxyError(problems[0] if len(problems) == 1 else
                               f"{problems[0]} (and {len(problems) - 1} more)")
        return tcp_routes(routes)

    async def apply(self, routes: list[Route]) -> list[str]:
        """Makes HAProxy serve the tcp routes of `routes` by one reload when the config
        changed. Returns what it did (empty: nothing to do). Raises HaproxyError for routes it
        cannot take or a reload that fails (a port another program holds), leaving the engine
        serving what it served."""
        routes = self._checked(routes)
        async with self._lock:
            new = haproxy_config(routes, self.settings, self.paths)
            if new == self.applied:
                self.routes = routes
                return []
            await self._check_config(new)
            previous, self.routes = self.routes, routes
            await asyncio.to_thread(self._write_config, new, self.paths.config_file)
            process, old = self.process, self.applied
            if old is None or process is None or process.returncode is not None:
                return ["(haproxy restarting: it starts with these routes)"]
            try:
                await self._reload(process, routes)
            except HaproxyError:  # the old worker serves on: so must a restart
                self.routes = previous
                await asyncio.to_thread(self._write_config, old, self.paths.config_file)
                raise
            self.applied = new
            return ["reload"]

    async def _check_config(self, config: str) -> None:
        """`haproxy -c` on `config` before it replaces the file (a refused one changes
        nothing): raises HaproxyError with HAProxy's first alert."""
        candidate = self.paths.config_file.with_suffix(".check")
        await asyncio.to_thread(self._write_config, config, candidate)
        try:
            check = await asyncio.create_subprocess_exec(
                *self.host.command([self.program, "-c", "-q", "-f", str(candidate)]),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT)
            out, _ = await check.communicate()
        finally:
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()
        if check.returncode != 0:
            lines = [line for line in out.decode(errors="replace").splitlines()
                     if "ALERT" in line] or ["(no reason given)"]
            raise HaproxyError(f"edge: haproxy refuses the tcp routes' config: "
                               f"{lines[0].strip()[:300]}")

    async def _reload(self, process: asyncio.subprocess.Process, routes: list[Route]) -> None:
        before = await self.proc()
        process.send_signal(signal.SIGUSR2)
        self.reloads += 1
        try:
            async with asyncio.timeout(RELOAD_TIMEOUT_S):
                while True:
                    now = await self.proc()
                    if before is not None and now is not None and now.reloads > before.reloads:
                        if now.failed > before.failed:
                            raise HaproxyError("edge: haproxy's reload failed; the previous "
                                               "routes are still served (see the node's log)")
                        if await self._serving(routes):
                            self.counters.new_worker()
                            return
                    await asyncio.sleep(POLL_S)
        except TimeoutError:
            raise HaproxyError(f"edge: haproxy did not serve the new tcp routes within "
                               f"{RELOAD_TIMEOUT_S:g} s") from None
