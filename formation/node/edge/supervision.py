"""What the edge's two engines (Caddy, HAProxy) share as supervised children of the node: the
restart loop with its back-off, and a graceful stop of a process (SIGTERM, then SIGKILL).

A crash loop must not spin (the back-off doubles from 0.2 s up to `restart_max_s`), yet an
engine that ran for a while before it died comes back at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from formation.node.tasks import cancel_and_wait

log = logging.getLogger(__name__)

STOP_GRACE_S = 10.0


async def restart_loop(run_once: Callable[[], Awaitable[None]], stopping: Callable[[], bool],
                       restart_max_s: float, name: str,
                       returncode: Callable[[], int | None]) -> None:
    """Runs `run_once` (one life of the process) again and again until `stopping()`."""
    failures = 0
    while not stopping():
        started = time.monotonic()
        try:
            await run_once()
        except OSError as exc:
            log.error(f"edge: cannot start {name}", extra={"fields": {"error": str(exc)}})
        if stopping():
            return
        failures = 0 if time.monotonic() - started > restart_max_s else failures + 1
        delay = min(restart_max_s, 0.2 * 2 ** min(failures, 10))
        log.warning(f"edge: {name} exited; restarting", extra={"fields": {
            "returncode": returncode(), "in_s": round(delay, 2)}})
        await asyncio.sleep(delay)


async def start_supervised(supervise: Callable[[], Coroutine[Any, Any, None]],
                           up: asyncio.Event,
                           timeout_s: float, name: str) -> asyncio.Task[None]:
    """Starts the supervisor task and returns it once the engine answers (`up` set); on
    timeout the task is cancelled and TimeoutError raised, so the caller says why in its own
    words and leaves no process behind."""
    task = asyncio.create_task(supervise(), name=name)
    try:
        async with asyncio.timeout(timeout_s):
            await up.wait()
    except TimeoutError:
        await cancel_and_wait(task)
        raise
    return task


async def stop_process(process: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL after the grace period; shielded, so a cancelled caller still
    leaves no process behind."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        async with asyncio.timeout(STOP_GRACE_S):
            await asyncio.shield(process.wait())
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await asyncio.shield(process.wait())
