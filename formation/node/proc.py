"""Subprocesses from async code: never blocking the loop, never outliving their caller. A
command that times out or whose caller is cancelled is killed and reaped, pipes closed."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: bytes
    stderr: bytes


async def run_command(args: list[str], timeout_s: float) -> Completed:
    """Raises OSError if it cannot start, TimeoutError if it does not finish in time."""
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.shield(proc.communicate())
        raise
    return Completed(proc.returncode or 0, out, err)
