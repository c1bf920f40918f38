"""A node service stops even when a background task will not: it names the task in the log."""

from __future__ import annotations

import asyncio
import logging

import pytest

from formation.node import service as service_module
from formation.node.service import NodeService


async def test_a_task_that_ignores_its_cancel_does_not_hold_the_stop(
        node_settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(service_module, "SHUTDOWN_TIMEOUT_S", 0.3)
    service = NodeService(node_settings)
    await service.start()
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                pass  # the fault: a cancellation swallowed

    task = service.spawn(stubborn())
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="formation.node.service"):
        await asyncio.wait_for(service.stop(), 10)
    assert not node_settings.api.socket.exists()
    assert any("did not end" in r.getMessage() and "stubborn" in str(r.__dict__.get("fields"))
               for r in caplog.records)
    release.set()
    task.cancel()
    await asyncio.wait([task], timeout=1)
    assert task.done()
