"""The serial console over the API's WebSocket, with a real QEMU/TCG guest: a command typed in
runs in the guest's shell and its output comes back. Boot progress and lifecycle changes are on
the event stream (topic "vm"), and `vm logs` (the serial route) follows the guest."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import select
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from vm_node import found, running_node, serial_text, state_of, vm_settings
from waiting import until

from bench.support.guest_kit import GUEST_UP, GuestKit
from formation.api import vm_models as vm
from formation.api import vm_routes
from formation.api.client import NodeClient
from tests.integration.conftest import clean_env, write_config

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(240)]


def _console_in_a_pty(config: Path, ref: str) -> str:
    """Runs `formation vm console REF` on a pseudo-terminal, types a command until its output
    comes back, then Ctrl-]; returns everything the terminal showed. Fails if it does not
    exit on Ctrl-]."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI, as a user in a terminal runs it
        os.execvpe(sys.executable, [sys.executable, "-m", "formation", "--config", str(config),
                                    "vm", "console", ref], clean_env())
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while b"CLI-CONSOLE-7" not in seen and time.monotonic() < deadline:
            # no quotes or parentheses: a character lost on a busy serial line must not leave
            # the shell waiting for the rest of a construct (it did: "$((3+4)" forever)
            os.write(fd, b"printf %s%s\\\\n CLI-CON SOLE-7\r")
            ready, _, _ = select.select([fd], [], [], 1.0)
            while ready:
                try:
                    seen += os.read(fd, 4096)
                except OSError:
                    break
                ready, _, _ = select.select([fd], [], [], 0.2)
        os.write(fd, b"\x1d")
        end = time.monotonic() + 15
        while time.monotonic() < end:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                assert os.waitstatus_to_exitcode(status) == 0, seen[-500:]
                break
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                with contextlib.suppress(OSError):
                    seen += os.read(fd, 4096)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise AssertionError("vm console did not leave on Ctrl-]")
        with contextlib.suppress(OSError):
            seen += os.read(fd, 4096)
    finally:
        os.close(fd)
    return seen.decode(errors="replace")


async def test_console_events_and_serial(short_tmp: Path, guest_kit: GuestKit) -> None:
    settings = vm_settings(short_tmp)
    async with running_node(settings) as node, NodeClient.unix(settings.api.socket) as client:
        events = node.bus.subscribe(topic="vm")
        await found(client, node)
        await client.call(vm_routes.image_import, vm.ImageImport(
            name="guest", kernel=str(guest_kit.kernel), initrd=str(guest_kit.initrd),
            cmdline=guest_kit.cmdline))
        created = await client.call(vm_routes.vm_create, vm.VmCreate(image="guest", name="c1"))

        async def up() -> bool:
            return (await state_of(client, "c1") == "running"
                    and GUEST_UP in await serial_text(client, "c1"))

        await until(up, 90, what="c1 running with its marker")

        seen: list[tuple[str, dict]] = []
        while not events.queue.empty():
            event = events.queue.get_nowait()
            seen.append((event.kind, event.data))
        kinds = [k for k, _ in seen]
        assert "create" in kinds and "place" in kinds
        states = [d.get("state") for k, d in seen if k == "status"]
        assert states[-1] == "running" and "booting" in states
        stages = [d.get("stage") for k, d in seen if k == "progress"]
        assert "first_serial_byte" in stages
        assert all(d.get("instance") == created.id for k, d in seen if k != "create")

        # following the serial log sees what the console makes the guest print
        follow = client.stream(vm_routes.vm_serial, query=vm.SerialQuery(follow=True,
                                                                         tail_bytes=0),
                               instance="c1")
        followed: list[str] = []

        async def read_follow() -> None:
            async for chunk in follow:
                followed.append(chunk.text)

        reader = asyncio.ensure_future(read_follow())
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(
                path=str(settings.api.socket))) as session:
            async with session.ws_connect("http://node/v1/vms/c1/console") as ws:
                received: list[bytes] = []

                async def echo() -> bool:
                    await ws.send_bytes(b"printf %s%s\\\\n CONSOLE- 42\n")
                    try:
                        msg = await ws.receive(timeout=2)
                    except TimeoutError:
                        return False
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        received.append(msg.data)
                    return b"CONSOLE-42" in b"".join(received)

                await until(echo, 60, every_s=0.5, what="the guest's shell answering")
        await until(lambda: "CONSOLE-42" in "".join(followed), 30, what="vm logs -f sees it")
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        # `formation vm console` in a terminal: keys in, output out, Ctrl-] leaves
        config = write_config(short_tmp)
        output = await asyncio.to_thread(_console_in_a_pty, config, "c1")
        assert "CLI-CONSOLE-7" in output, output[-500:]
        assert "console closed" in output
        # an unknown instance's console is refused before any upgrade, in one line
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(
                path=str(settings.api.socket))) as session, session.get(
                "http://node/v1/vms/nope/console") as resp:
            assert resp.status == 404
            assert (await resp.json())["message"].startswith("instance: no instance named nope")
