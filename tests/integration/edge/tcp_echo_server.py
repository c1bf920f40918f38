"""A tcp backend for the edge's tcp-route tests: on each connection it first sends its name
(argv[3]) and a newline, then echoes whatever it receives, until the client closes. Usage:
tcp_echo_server.py ADDRESS PORT NAME."""

from __future__ import annotations

import asyncio
import sys


async def serve(address: str, port: int, name: bytes) -> None:
    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(name + b"\n")
            await writer.drain()
            while data := await reader.read(4096):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(session, address, port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()))
