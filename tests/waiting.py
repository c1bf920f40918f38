"""Waiting for a condition in async tests: poll it until it holds or the time is up, then say
which check failed. One helper for the lab, loopback-cluster and join tests."""

from __future__ import annotations

import asyncio


async def until(check, timeout_s: float = 10.0, every_s: float = 0.1):
    """Returns the check's first truthy result; raises AssertionError naming it on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            name = getattr(check, "__name__", "condition")
            raise AssertionError(f"not within {timeout_s} s: {name}")
        await asyncio.sleep(every_s)
