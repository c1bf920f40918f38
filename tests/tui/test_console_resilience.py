"""A node that is hung or gone never freezes the console: requests time out, the banner says so,
keys keep working, and the console recovers when a node answers again. Uses a real aiohttp
server that never answers, and a real `formation node` process that is stopped and restarted."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import yaml
from aiohttp import web

from bench.support.processes import start_node_process, stop_process
from formation.api.client import NodeClient
from formation.tui.app import FormationApp
from formation.tui.screens.dashboard import DashboardScreen
from formation.tui.screens.logs import LogsScreen
from formation.tui.widgets.event_log import EventLog
from tests.tui.conftest import wait_for


async def hung_server(socket: Path) -> web.AppRunner:
    """Accepts every request and never answers it."""

    async def hang(request: web.Request) -> web.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hang)
    runner = web.AppRunner(app, shutdown_timeout=0.1, handle_signals=False)
    await runner.setup()
    await web.UnixSite(runner, str(socket)).start()
    return runner


def banner(app: FormationApp) -> str:
    return str(app.screen.query_one("#banner").render())


async def test_hung_node_times_out_and_console_recovers(short_tmp: Path) -> None:
    from settings_factory import make_settings

    from formation.node.service import NodeService

    settings = make_settings(short_tmp)
    socket = settings.api.socket
    runner = await hung_server(socket)
    app = FormationApp(lambda _: NodeClient.unix(socket), request_timeout_s=0.5, poll_s=0.3)
    service = None
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.link_status.state == "offline")
            assert "did not answer within 0.5 s" in app.link_status.detail
            assert "NOT ANSWERING" in banner(app)
            await pilot.press("l")  # keys still act while every request hangs
            await wait_for(pilot, lambda: isinstance(app.screen, LogsScreen))
            state = app.screen.query_one("#logs-state")
            await wait_for(pilot, lambda: "did not answer" in str(state.render()))
            await pilot.press("d")
            await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
            await runner.cleanup()
            runner = None
            service = NodeService(settings)
            await service.start()
            await wait_for(pilot, lambda: app.link_status.online)
            await wait_for(pilot, lambda: app.node_status is not None)
            assert app.node_status.name == "test-node"
            assert "online" in banner(app)
    finally:
        if runner is not None:
            await runner.cleanup()
        if service is not None:
            await service.stop()


async def test_node_process_stopped_and_restarted(short_tmp: Path) -> None:
    socket = short_tmp / "node.sock"
    config = short_tmp / "node.yaml"
    config.write_text(yaml.safe_dump({
        "name": "proc-node", "data_dir": str(short_tmp / "data"),
        "api": {"socket": str(socket)}, "probe": {"boot_test": False}}))
    proc = start_node_process(config)
    app = FormationApp(lambda _: NodeClient.unix(socket), request_timeout_s=1.0, poll_s=0.3)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.link_status.online, timeout_s=20)
            first = app.node_status.started_at
            await asyncio.to_thread(stop_process, proc)
            await wait_for(pilot, lambda: app.link_status.state == "offline")
            assert "NOT ANSWERING" in banner(app)
            await pilot.press("s")  # the settings screen says it cannot read, does not hang
            state = app.screen.query_one("#settings-state")
            await wait_for(pilot, lambda: "cannot read the settings" in str(state.render()))
            await pilot.press("d")
            proc = start_node_process(config)
            await wait_for(pilot, lambda: app.link_status.online, timeout_s=20)
            await wait_for(pilot, lambda: app.node_status.started_at != first)
            log = app.screen.query_one(EventLog)
            await wait_for(pilot, lambda: any("node/started" in line for line in log.lines))
    finally:
        with contextlib.suppress(ProcessLookupError):
            await asyncio.to_thread(stop_process, proc)
