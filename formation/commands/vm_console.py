"""`formation vm console`: the terminal end of the console WebSocket. The terminal is put in
raw mode so every key (Ctrl-C included) goes to the guest; Ctrl-] leaves, as in telnet."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import termios
import tty
from typing import Any

import aiohttp

from formation.commands.context import Context
from formation.errors import FormationError

ESCAPE = b"\x1d"  # Ctrl-]
PATH = "/v1/vms/{instance}/console"


async def _connect(obj: Context, node_address: str | None,
                   instance: str) -> tuple[aiohttp.ClientSession, Any]:
    target = PATH.format(instance=instance)
    if node_address:
        from formation.api.auth import sign_request
        from formation.api.client import NodeClient
        from formation.identity.store import load_identity

        identity = load_identity(obj.settings.data_dir)
        probe = NodeClient.tcp(node_address, identity)
        async with probe:
            node_key = await probe._target_node()  # noqa: SLF001 - the key the node answers
        session = aiohttp.ClientSession()
        headers = sign_request(identity, "GET", target, b"", node_key)
        url = f"http://{node_address}{target}"
    else:
        session = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=str(obj.settings.api.socket)))
        headers, url = {}, f"http://node{target}"
    try:
        ws = await session.ws_connect(url, headers=headers)
    except aiohttp.WSServerHandshakeError as exc:
        await session.close()
        raise FormationError(f"console: the node refused: {exc.status} {exc.message}") from None
    except (aiohttp.ClientError, OSError) as exc:
        await session.close()
        raise FormationError(f"console: no node service answered: {exc}") from None
    return session, ws


async def _session(obj: Context, node_address: str | None, instance: str) -> None:
    session, ws = await _connect(obj, node_address, instance)
    loop = asyncio.get_running_loop()
    keys: asyncio.Queue[bytes] = asyncio.Queue()
    fd = sys.stdin.fileno()
    loop.add_reader(fd, lambda: keys.put_nowait(os.read(fd, 1024)))
    out = sys.stdout.buffer

    async def down() -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                out.write(msg.data)
                out.flush()

    async def up() -> None:
        while True:
            data = await keys.get()
            if not data or ESCAPE in data:
                before = data.split(ESCAPE)[0]
                if before:
                    await ws.send_bytes(before)
                return
            await ws.send_bytes(data)

    tasks = [asyncio.ensure_future(down()), asyncio.ensure_future(up())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        loop.remove_reader(fd)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await ws.close()
        await session.close()


def attach(obj: Context, node_address: str | None, instance: str) -> None:
    if not sys.stdin.isatty():
        raise FormationError("console: needs a terminal (use `formation vm logs -f` to read)")
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    sys.stderr.write(f"connected to {instance}'s serial console; Ctrl-] leaves\r\n")
    try:
        tty.setraw(fd)
        asyncio.run(_session(obj, node_address, instance))
    finally:
        with contextlib.suppress(termios.error):
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        sys.stderr.write("\r\nconsole closed\n")
