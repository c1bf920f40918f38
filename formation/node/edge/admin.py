"""Caddy's admin API over its unix socket: the only way the node changes the running engine.
Every change is graceful in Caddy (listeners are kept, old connections drain), so the node
sends only what changed and never restarts the process to reconfigure it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from formation.errors import FormationError

TIMEOUT_S = 30.0  # a /load that provisions certificates' storage may take a while


class AdminError(FormationError):
    """The engine refused or did not answer a change."""


class CaddyAdmin:
    def __init__(self, socket: Path) -> None:
        self.socket = socket
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(self.socket)),
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_S))
        return self._session

    async def request(self, method: str, path: str, body: Any = None) -> str:
        """`path` like /config/apps/http or /id/edge-route-www; raises AdminError with the
        engine's one-line reason when it refuses."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            async with self._client().request(method, f"http://localhost{path}", data=data,
                                              headers=headers) as response:
                text = await response.text()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise AdminError(f"edge: the engine's admin API did not answer: {exc}") from None
        if response.status >= 400:
            raise AdminError(f"edge: the engine refused {method} {path}: {_reason(text)}")
        return text

    async def alive(self) -> bool:
        try:
            await self.request("GET", "/config/admin")
            return True
        except AdminError:
            return False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _reason(text: str) -> str:
    try:
        error = json.loads(text).get("error", text)
    except (ValueError, AttributeError):
        error = text
    return " ".join(str(error).split())[:300]
