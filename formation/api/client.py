"""The typed async client. Every screen and command talks to a node through this, over the local
unix socket or, signed with the caller's key, over TCP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from pydantic import BaseModel

from formation.api import routes
from formation.api.auth import H_NODE, sign_request_async
from formation.api.caller import Audience
from formation.api.endpoint import Endpoint, Req, Resp
from formation.api.models import ErrorBody, Event
from formation.errors import FormationError
from formation.identity import node_id_for
from formation.identity.signer import Signer


class ApiError(FormationError):
    """The node answered with an error status."""

    def __init__(self, status: int, body: ErrorBody) -> None:
        super().__init__(f"{body.message} (HTTP {status} {body.error})")
        self.status = status
        self.body = body


class NodeUnreachable(FormationError):
    """No node answered at the address, or it did not answer in time."""


class NodeClient:
    """One connection pool to one node. Use as `async with NodeClient.unix(path) as client`.

    Over TCP every request is signed (by a key file or an ssh-agent's key: identity/signer.py)
    for the node it goes to (its public key, `node_key`). A
    caller that knows whom it is talking to (a replication peer, a gossip target) passes the
    key; otherwise the client asks the node once (its `X-Formation-Node` answer header) and
    signs for that key from then on, after checking it against `node_id` when given: a node at
    the address that claims another's key would otherwise get requests it could replay to
    that other node."""

    def __init__(
        self,
        base_url: str,
        connector_factory: Any,
        where: str,
        identity: Signer | None = None,
        timeout_s: float = 10.0,
        node_key: str | None = None,
        node_id: str | None = None,
    ) -> None:
        self.base_url = base_url
        self.where = where
        self._connector_factory = connector_factory
        self._identity = identity
        self.node_key = node_key
        self.node_id = node_id
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def unix(cls, socket_path: Path | str, timeout_s: float = 10.0) -> NodeClient:
        path = str(socket_path)
        return cls("http://node", lambda: aiohttp.UnixConnector(path=path), path, None, timeout_s)

    @classmethod
    def tcp(cls, address: str, identity: Signer, timeout_s: float = 10.0,
            node_key: str | None = None, node_id: str | None = None) -> NodeClient:
        return cls(f"http://{address}", aiohttp.TCPConnector, address, identity, timeout_s,
                   node_key, node_id)

    async def __aenter__(self) -> NodeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=self._connector_factory(), timeout=self._timeout
            )
        return self._session

    def _unreachable(self, exc: BaseException) -> NodeUnreachable:
        return NodeUnreachable(f"no node service answered at {self.where}: {_why(exc)}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _target_node(self) -> str:
        """The public key of the node at the address: as given, or as it says in the answer
        header of the public health route (asked once)."""
        if self.node_key is None:
            try:
                async with self._sess().get(self.base_url + routes.health.path) as resp:
                    await resp.read()
                    said = resp.headers.get(H_NODE)
            except (aiohttp.ClientConnectionError, TimeoutError, FileNotFoundError) as exc:
                raise self._unreachable(exc) from None
            if not said or len(said) != 64 or not set(said) <= set("0123456789abcdef"):
                raise NodeUnreachable(f"the node at {self.where} did not say which node it is "
                                      f"(no {H_NODE} header): an older or a foreign service?")
            if self.node_id is not None and node_id_for(bytes.fromhex(said)) != self.node_id:
                raise NodeUnreachable(f"the node at {self.where} is not {self.node_id}")
            self.node_key = said
        return self.node_key

    async def _prepare(
        self, endpoint: Endpoint[Any, Any], body: BaseModel | None, query: BaseModel | None,
        params: dict[str, Any],
    ) -> tuple[str, bytes, dict[str, str]]:
        target = endpoint.path.format(**params) if params else endpoint.path
        if query is not None:
            fields = query.model_dump(mode="json", exclude_none=True)
            if fields:
                target += "?" + urlencode(fields)
        data = b"" if body is None else body.model_dump_json().encode()
        headers = {"Content-Type": "application/json"} if data else {}
        if self._identity is not None:
            node = await self._target_node()
            headers |= await sign_request_async(self._identity, endpoint.method, target, data,
                                                node)
        return target, data, headers

    async def call(
        self,
        endpoint: Endpoint[Req, Resp],
        body: Req | None = None,
        query: BaseModel | None = None,
        **params: str,
    ) -> Resp:
        target, data, headers = await self._prepare(endpoint, body, query, params)
        try:
            async with self._sess().request(
                endpoint.method, self.base_url + target, data=data or None, headers=headers
            ) as resp:
                payload = await resp.read()
                if resp.status >= 400:
                    raise ApiError(resp.status, _error_body(resp.status, payload))
                return endpoint.response.model_validate_json(payload)
        except (aiohttp.ClientConnectionError, TimeoutError, FileNotFoundError) as exc:
            raise self._unreachable(exc) from None

    async def events(
        self, since: int | None = None, topic: str | None = None
    ) -> AsyncIterator[Event]:
        """Yields events as the node publishes them; ends when the node closes the stream."""
        from formation.api.models import EventsQuery

        target, _, headers = await self._prepare(
            routes.events, None, EventsQuery(since=since, topic=topic), {}
        )
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout.total)
        try:
            async with self._sess().get(
                self.base_url + target, headers=headers, timeout=timeout
            ) as resp:
                if resp.status >= 400:
                    raise ApiError(resp.status, _error_body(resp.status, await resp.read()))
                async for line in resp.content:
                    if line.startswith(b"data:"):
                        yield Event.model_validate_json(line[5:].strip())
        except (aiohttp.ClientConnectionError, FileNotFoundError) as exc:
            raise NodeUnreachable(f"event stream from {self.where} ended: {_why(exc)}") from None

    async def stream(
        self,
        endpoint: Endpoint[Req, Resp],
        body: Req | None = None,
        query: BaseModel | None = None,
        **params: str,
    ) -> AsyncIterator[Resp]:
        """Yields the items of a streaming endpoint (server-sent events) until it ends."""
        target, data, headers = await self._prepare(endpoint, body, query, params)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout.total,
                                        sock_read=None)
        try:
            async with self._sess().request(endpoint.method, self.base_url + target,
                                            data=data or None, headers=headers,
                                            timeout=timeout) as resp:
                if resp.status >= 400:
                    raise ApiError(resp.status, _error_body(resp.status, await resp.read()))
                async for line in resp.content:
                    if line.startswith(b"data:"):
                        yield endpoint.response.model_validate_json(line[5:].strip())
        except (aiohttp.ClientConnectionError, TimeoutError, FileNotFoundError) as exc:
            raise self._unreachable(exc) from None

    async def raw_get(self, path: str) -> bytes:
        """For the non-JSON documents (/openapi.json, /metrics)."""
        raw = Endpoint("raw", "GET", path, BaseModel, BaseModel, "", audience=Audience.MEMBER)
        _, _, headers = await self._prepare(raw, None, None, {})
        try:
            async with self._sess().get(self.base_url + path, headers=headers) as resp:
                payload = await resp.read()
                if resp.status >= 400:
                    raise ApiError(resp.status, _error_body(resp.status, payload))
                return payload
        except (aiohttp.ClientConnectionError, TimeoutError, FileNotFoundError) as exc:
            raise self._unreachable(exc) from None


def _error_body(status: int, payload: bytes) -> ErrorBody:
    try:
        return ErrorBody.model_validate(json.loads(payload))
    except (ValueError, TypeError):
        text = payload.decode(errors="replace").strip()[:200] or "no details"
        return ErrorBody(error=f"http_{status}", message=text)


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, FileNotFoundError | aiohttp.ClientConnectorError):
        return "nothing is listening there (is `formation node` running?)"
    return str(exc) or type(exc).__name__
