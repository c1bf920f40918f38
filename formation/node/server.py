"""The aiohttp application: binds a handler to every endpoint in `api.routes`, validates input
against the endpoint's models, turns every failure into an ErrorBody, and checks signatures on TCP.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct
import time
import weakref
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from formation.api import routes
from formation.api.auth import AuthFailure, NonceCache, verify_request
from formation.api.endpoint import Endpoint
from formation.api.models import Empty, ErrorBody, FieldError
from formation.node.metrics import NodeMetrics

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20
CALLER = web.RequestKey("caller", str)  # who made the request: "unix:pid=..,uid=.." or "key:HEX"
Handler = Callable[..., Awaitable[Any]]


def error_response(status: int, code: str, message: str,
                   fields: list[FieldError] | None = None) -> web.Response:
    body = ErrorBody(error=code, message=message, fields=fields or [])
    return web.Response(status=status, body=body.model_dump_json(), content_type="application/json")


def _field_errors(exc: ValidationError, where: str) -> list[FieldError]:
    return [
        FieldError(field=".".join(str(p) for p in err["loc"]) or where,
                   message=err["msg"].removeprefix("Value error, "))
        for err in exc.errors()
    ]


class BadRequest(Exception):
    def __init__(self, message: str, fields: list[FieldError]) -> None:
        super().__init__(message)
        self.fields = fields


_EMPTY = Empty()


async def _parse_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    if model is Empty and not request.body_exists:  # most reads: nothing to read or validate
        return _EMPTY
    raw = await request.read()
    if model is Empty and not raw.strip():
        return _EMPTY
    if not raw.strip():
        raise BadRequest("request body required: a JSON object", [])
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        fields = _field_errors(exc, "body")
        first = fields[0] if fields else None
        message = f"invalid body: {first.field}: {first.message}" if first else "invalid body"
        raise BadRequest(message, fields) from None


def _parse_query(request: web.Request, model: type[BaseModel] | None) -> BaseModel | None:
    if model is None:
        return None
    allowed = set(model.model_fields)
    unknown = [key for key in request.query if key not in allowed]
    if unknown:
        raise BadRequest(f"unknown query parameter: {unknown[0]}",
                         [FieldError(field=unknown[0], message="not a parameter of this endpoint")])
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        fields = _field_errors(exc, "query")
        raise BadRequest(f"invalid query: {fields[0].field}: {fields[0].message}", fields) from None


def bind(endpoint: Endpoint, handler: Handler) -> Handler:
    async def route(request: web.Request) -> web.StreamResponse:
        body = await _parse_body(request, endpoint.request)
        kwargs: dict[str, Any] = dict(request.match_info) if request.match_info else {}
        if endpoint.query is not None:
            kwargs["query"] = _parse_query(request, endpoint.query)
        if endpoint.stream:
            return await handler(request, **kwargs)
        result = await handler(request, body, **kwargs)
        if isinstance(result, web.StreamResponse):  # a handler that pre-rendered its model
            return result
        return web.Response(body=result.model_dump_json(), content_type="application/json")

    route.__name__ = endpoint.name
    return route


_unix_callers: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()


def _unix_caller(request: web.Request) -> str | None:
    """"unix:pid=..,uid=.." from SO_PEERCRED for a unix socket connection, else None. The
    credentials are fixed when the connection is made, so they are read once per connection
    (kept with its transport) rather than once per request."""
    transport = request.transport
    if transport is None:
        return None
    caller = _unix_callers.get(transport)
    if caller is not None:
        return caller
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _ = struct.unpack("3i", creds)
    caller = _unix_callers[transport] = f"unix:pid={pid},uid={uid}"
    return caller


def _keep_protocol_headers(exc: web.HTTPException, response: web.Response) -> None:
    """An error body replaces aiohttp's, but headers the protocol requires (Allow on a 405,
    Location on a redirect) stay."""
    for name in ("Allow", "Location"):
        if name in exc.headers:
            response.headers[name] = exc.headers[name]


def _log_request(request: web.Request, name: str, status: int, elapsed: float) -> None:
    """Who did what: every mutating request is logged at info with its caller (the unix peer's
    pid and uid from SO_PEERCRED, or the signing key); reads only at debug."""
    level = logging.INFO if request.method not in ("GET", "HEAD", "OPTIONS") else logging.DEBUG
    if not log.isEnabledFor(level):
        return
    caller = request.get(CALLER) or f"tcp:{request.remote} unsigned"
    log.log(level, "request", extra={"fields": {
        "method": request.method, "path": request.path, "endpoint": name, "status": status,
        "caller": caller, "ms": round(elapsed * 1000, 2)}})


def make_middlewares(
    metrics: NodeMetrics, is_known: Callable[[str], bool], clock_skew_s: float
) -> list:
    nonces = NonceCache(window_s=clock_skew_s)

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        name = request.match_info.route.name or "unmatched"
        try:
            response = await handler(request)
        except BadRequest as exc:
            response = error_response(400, "invalid_request", str(exc), exc.fields)
        except web.HTTPException as exc:
            code = HTTPStatus(exc.status).phrase.lower().replace(" ", "_")
            response = error_response(exc.status, code,
                                      f"{exc.reason}: {request.method} {request.path}")
            _keep_protocol_headers(exc, response)
        except Exception as exc:
            log.error("request failed", exc_info=exc,
                      extra={"fields": {"endpoint": name, "path": request.path}})
            response = error_response(500, "internal_error",
                                      f"the node failed to handle {name}: {type(exc).__name__}")
        elapsed = time.perf_counter() - start
        metrics.observe_request(name, response.status, elapsed)
        _log_request(request, name, response.status, elapsed)
        return response

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        caller = _unix_caller(request)
        if caller is not None:
            request[CALLER] = caller
            return await handler(request)
        if request.path in routes.PUBLIC_PATHS and request.method == "GET":
            return await handler(request)
        body = await request.read()
        try:
            # A joining host's key is not known yet: for the join endpoints alone the
            # signature is verified but the key may be any; their handler decides.
            open_door = request.path in routes.SIGNED_BY_ANY_KEY and request.method == "POST"
            key = verify_request(request.headers, request.method, request.raw_path, body,
                                 is_known=(lambda _k: True) if open_door else is_known,
                                 nonces=nonces)
        except AuthFailure as exc:
            reason = str(exc).split(":")[0]
            metrics.auth_failures.labels(reason).inc()
            log.warning("request refused", extra={"fields": {
                "path": request.path, "reason": str(exc), "remote": request.remote}})
            return error_response(401, "unauthorized", str(exc))
        request[CALLER] = f"key:{key}" if not open_door or is_known(key) else f"newkey:{key}"
        return await handler(request)

    return [errors, authenticate]


def find_handler(handler_objects: list[object], name: str) -> Handler | None:
    """Each part of the node brings an object whose methods are named after its endpoints.
    None when the part is not running in this node (it was left out of its components)."""
    found = [getattr(obj, name) for obj in handler_objects if hasattr(obj, name)]
    if len(found) > 1:
        raise RuntimeError(f"endpoint {name}: {len(found)} handlers, expected one")
    return found[0] if found else None


def _part_not_running(endpoint: Endpoint) -> Handler:
    async def unavailable(request: web.Request, *args: Any, **kwargs: Any) -> web.Response:
        return error_response(503, "service_unavailable",
                              f"{endpoint.name}: that part of the node is not running here")

    return unavailable


def build_app(handler_objects: list[object], metrics: NodeMetrics,
              is_known: Callable[[str], bool], clock_skew_s: float) -> web.Application:
    app = web.Application(
        middlewares=make_middlewares(metrics, is_known, clock_skew_s), client_max_size=MAX_BODY
    )
    for endpoint in routes.ENDPOINTS:
        handler = find_handler(handler_objects, endpoint.name) or _part_not_running(endpoint)
        app.router.add_route(endpoint.method, endpoint.path, bind(endpoint, handler),
                             name=endpoint.name)
    document: list[bytes] = []  # built on the first request: it is not needed to be READY

    async def openapi(_: web.Request) -> web.Response:
        if not document:
            # pydantic's JSON schemas of every model: a tenth of the node's start-up CPU, and
            # seconds of the appliance's boot under emulation.
            from formation.api.openapi import build_openapi

            built = await asyncio.to_thread(build_openapi)
            document.append(json.dumps(built).encode())
        return web.Response(body=document[0], content_type="application/json")

    app.router.add_get(routes.OPENAPI_PATH, openapi, name="openapi")
    app.router.add_get(routes.METRICS_PATH, find_handler(handler_objects, "metrics"),  # type: ignore[arg-type]
                       name="metrics")
    return app
