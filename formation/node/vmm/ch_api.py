"""The Cloud Hypervisor REST API on its unix socket: one request, one bounded answer.

Every call goes to http://localhost/api/v1/<endpoint> over the VM's own socket. A PUT that
takes no body is sent with none (the binary refuses `{}`). An answer is read to at most
MAX_ANSWER bytes: the VMM is a process a guest may have influenced, so a huge or endless
error body costs us a bounded buffer and one closed connection, never the node's memory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from formation.node.vmm.ch_errors import describe, one_line
from formation.node.vmm.machine import MachineGone, VmmError

API_ROOT = "http://localhost/api/v1/"
MAX_ANSWER = 256 * 1024  # vm.info of a VM with many devices stays far below this
DEFAULT_TIMEOUT_S = 30.0


class ChApi:
    """A client for one VMM's socket. Not shared between VMs; `close` when done."""

    def __init__(self, socket: Path, timeout_s: float = DEFAULT_TIMEOUT_S,
                 max_answer: int = MAX_ANSWER) -> None:
        self.socket = socket
        self.timeout_s = timeout_s
        self.max_answer = max_answer
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(self.socket)),
                timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, endpoint: str,
                      body: dict[str, Any] | None = None) -> tuple[int, bytes, bool]:
        """(status, answer bytes, truncated). MachineGone when nothing answers on the socket;
        VmmError when the VMM does not answer in time or breaks the connection."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with self._client().request(method, API_ROOT + endpoint, data=data,
                                              headers=headers) as response:
                raw, truncated = await self._read(response)
                if truncated:
                    response.close()  # drop the connection rather than drain the rest
                return response.status, raw, truncated
        except (aiohttp.ClientConnectorError, FileNotFoundError, ConnectionRefusedError) as exc:
            raise MachineGone(f"cloud-hypervisor does not answer on {self.socket} "
                              f"({one_line(str(exc), 120)})") from None
        except TimeoutError:
            raise VmmError(f"cloud-hypervisor did not answer {endpoint} within "
                           f"{self.timeout_s:g} s") from None
        except aiohttp.ClientError as exc:
            raise VmmError(f"cloud-hypervisor {endpoint}: the answer was broken "
                           f"({one_line(str(exc) or type(exc).__name__, 120)})") from None

    async def _read(self, response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
        parts: list[bytes] = []
        size = 0
        while size <= self.max_answer:
            chunk = await response.content.read(self.max_answer + 1 - size)
            if not chunk:
                return b"".join(parts), False
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)[:self.max_answer], True

    async def call(self, method: str, endpoint: str, body: dict[str, Any] | None = None) -> Any:
        """The decoded answer (None for an empty one) of a successful call; VmmError with a
        one-line message for any other."""
        status, raw, truncated = await self.request(method, endpoint, body)
        if status in (200, 204) and not truncated:
            if not raw.strip():
                return None
            try:
                return json.loads(raw)
            except ValueError:
                raise VmmError(f"cloud-hypervisor {endpoint} answered something that is not "
                               f"JSON: {one_line(raw.decode('utf-8', 'replace'), 80)}") from None
        raise VmmError(describe(endpoint, status, raw, truncated))

    async def get(self, endpoint: str) -> Any:
        return await self.call("GET", endpoint)

    async def put(self, endpoint: str, body: dict[str, Any] | None = None) -> Any:
        return await self.call("PUT", endpoint, body)
