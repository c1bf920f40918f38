"""The interactive serial console: GET /v1/vms/{instance}/console upgraded to a WebSocket.
Binary (or text) frames from the client are keystrokes for the guest's serial input; the
guest's serial output comes back as binary frames.

The VMM serves the serial port on a unix socket in the VM's workdir (CONSOLE_SOCKET; QEMU's
`-chardev socket,server=on`), one client at a time. On another node than the one running the
instance, the console is relayed: a signed WebSocket to the placed node, piped both ways.
Typing into a guest is a change to it, so the caller must be the owner or an admin, as for
every write."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from formation.api.caller import Caller
from formation.api.errors import BadGateway, Conflict, HandlerError, NotFound
from formation.api.models import ErrorBody
from formation.node.vmm import workdir
from formation.node.vmm.machine import CONSOLE_SOCKET

if TYPE_CHECKING:
    from formation.node.vmm.component import VmmComponent

log = logging.getLogger(__name__)

CONSOLE_PATH = "/v1/vms/{instance}/console"
READ = 4096


def _error(exc: HandlerError, request: web.Request) -> web.Response:
    body = ErrorBody(error=exc.code, message=f"{exc.message}: {request.method} {request.path}")
    return web.Response(status=exc.status, body=body.model_dump_json(),
                        content_type="application/json")


async def serve_console(part: VmmComponent, request: web.Request,
                        caller: Caller) -> web.StreamResponse:
    try:
        handlers = part.api_handlers()
        inst, _ = await handlers.changeable(caller, request.match_info["instance"])
        _, _, decisions = await handlers.world()
        d = decisions.get(inst["key"])
        node = d.node if d is not None else None
        if node is None:
            raise Conflict(f"instance: {inst.get('name')} is not placed on a node yet")
        if node != part.me:
            return await _relay(part, request, node, inst["key"])
        sock = workdir.path_for(part.run_dir, inst["key"]) / CONSOLE_SOCKET
        if inst["key"] not in (part.reconciler.running if part.reconciler else {}):
            raise Conflict(f"instance: {inst.get('name')} is not running here")
        try:
            reader, writer = await asyncio.open_unix_connection(str(sock))
        except OSError as exc:
            raise NotFound(f"instance: {inst.get('name')} has no serial console socket "
                           f"({exc.strerror})") from None
    except HandlerError as exc:
        return _error(exc, request)
    ws = web.WebSocketResponse(heartbeat=30.0)
    await ws.prepare(request)
    try:
        await _pipe_socket(ws, reader, writer)
    finally:
        writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await writer.wait_closed()
    return ws


async def _pipe_socket(ws: web.WebSocketResponse, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
    async def out() -> None:
        while data := await reader.read(READ):
            await ws.send_bytes(data)

    async def into() -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                writer.write(msg.data)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                writer.write(msg.data.encode())
            else:
                continue
            await writer.drain()

    await _first_done(out(), into())
    await ws.close()


async def _relay(part: VmmComponent, request: web.Request, node: str,
                 inst_id: str) -> web.StreamResponse:
    from formation.api.auth import sign_request

    address = await part.address_of(node)
    if address is None or part.service is None or part.service.identity is None:
        raise BadGateway(f"instance: the node running it ({node[:12]}) has no known address")
    target = CONSOLE_PATH.format(instance=inst_id)
    headers = sign_request(part.service.identity, "GET", target, b"", node)
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
    try:
        try:
            upstream = await session.ws_connect(f"http://{address}{target}", headers=headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BadGateway(f"instance: the node running it did not answer: {exc}") from None
        ws = web.WebSocketResponse(heartbeat=30.0)
        await ws.prepare(request)

        async def down() -> None:
            async for msg in upstream:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    await ws.send_bytes(msg.data)

        async def up() -> None:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    await upstream.send_bytes(msg.data)
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    await upstream.send_bytes(msg.data.encode())

        await _first_done(down(), up())
        await upstream.close()
        await ws.close()
        return ws
    finally:
        await session.close()


async def _first_done(*coros: Coroutine[Any, Any, None]) -> None:
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
