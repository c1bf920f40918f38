"""The aiohttp application, and the only code of the node that knows HTTP. For every endpoint in
`api.routes` it: reads the caller (the unix socket's peer, or the TCP request's signature and the
key's roles in the replicated state), refuses a caller outside the endpoint's audience, parses
the body, query and path parameters against the endpoint's models, calls the handler with
(body, caller[, path params][, query=]) and writes its response model, its pre-rendered bytes or,
for a stream, its events as server-sent events. Every failure becomes an ErrorBody."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import socket
import struct
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from formation.api import routes
from formation.api.auth import H_NODE, AuthFailure, NonceCache, verify_request
from formation.api.caller import Audience, Caller, allows
from formation.api.endpoint import Endpoint
from formation.api.errors import BadRequest, HandlerError, Unavailable
from formation.api.models import Empty, ErrorBody, FieldError
from formation.api.rendered import Rendered
from formation.node.binding import HandlerMismatch, check_handler
from formation.node.metrics import NodeMetrics

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20
SSE_KEEPALIVE_S = 15.0
CALLER = web.RequestKey("caller", Caller)  # set by the authenticate middleware, for the route
Handler = Callable[..., Awaitable[Any]]
Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


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


_EMPTY = Empty()


async def _parse_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    if model is Empty and not request.body_exists:  # most reads: nothing to read or validate
        return _EMPTY
    raw = await request.read()
    if model is Empty and not raw.strip():
        return _EMPTY
    if not raw.strip():
        raise BadRequest("request body required: a JSON object")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        fields = _field_errors(exc, "body")
        first = fields[0] if fields else None
        message = f"invalid body: {first.field}: {first.message}" if first else "invalid body"
        raise BadRequest(message, fields) from None


def _parse_query(request: web.Request, model: type[BaseModel]) -> BaseModel:
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


async def _serve_events(request: web.Request, stream: AsyncIterator[BaseModel],
                        node_key: str) -> web.StreamResponse:
    """Server-sent events of the handler's items, with a comment line as keep-alive while none
    comes. The pending item is awaited across keep-alives (not cancelled by them), and the
    iterator is closed however the stream ends."""
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache", H_NODE: node_key,
    })
    pending: asyncio.Future | None = None
    try:
        await response.prepare(request)
        await response.write(b": formation event stream\n\n")
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(stream))
            done, _ = await asyncio.wait({pending}, timeout=SSE_KEEPALIVE_S)
            if not done:
                await response.write(b": keepalive\n\n")
                continue
            finished, pending = pending, None
            try:
                item = finished.result()
            except StopAsyncIteration:
                break
            seq, kind = getattr(item, "seq", ""), getattr(item, "kind", "message")
            frame = f"id: {seq}\nevent: {kind}\ndata: {item.model_dump_json()}\n\n"
            await response.write(frame.encode())
    except ConnectionResetError:
        pass  # the client hung up: the normal end of a stream, not a failure
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        closer = getattr(stream, "aclose", None)
        if closer is not None:
            await closer()
    return response


def bind(endpoint: Endpoint, handler: Handler, node_key: str = "") -> Route:
    """The aiohttp route of one endpoint: HTTP in, handler(body, caller, ...), HTTP out."""
    path_params = endpoint.path_params

    async def route(request: web.Request) -> web.StreamResponse:
        caller = request[CALLER]
        body = await _parse_body(request, endpoint.request)
        kwargs: dict[str, Any] = {name: request.match_info[name] for name in path_params}
        if endpoint.query is not None:
            kwargs["query"] = _parse_query(request, endpoint.query)
        if endpoint.stream:
            stream = handler(body, caller, **kwargs)
            if inspect.isawaitable(stream):
                stream = await stream
            return await _serve_events(request, stream, node_key)
        result = await handler(body, caller, **kwargs)
        if isinstance(result, Rendered) and result.file is not None:  # streamed from disk
            return web.FileResponse(result.file, headers={"Content-Type": result.content_type})
        if isinstance(result, Rendered):  # a handler that serialized its model itself
            return web.Response(body=result.body, headers={"Content-Type": result.content_type})
        return web.Response(body=result.model_dump_json(), content_type="application/json")

    route.__name__ = endpoint.name
    return route


_unix_callers: weakref.WeakKeyDictionary[object, Caller] = weakref.WeakKeyDictionary()


def _unix_caller(request: web.Request) -> Caller | None:
    """The unix socket peer's pid and uid (SO_PEERCRED) for a unix socket connection, else None.
    The credentials are fixed when the connection is made, so they are read once per connection
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
    caller = _unix_callers[transport] = Caller("unix", pid=pid, uid=uid)
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
    found = request.get(CALLER)
    caller = str(found) if found is not None else f"tcp:{request.remote} unsigned"
    log.log(level, "request", extra={"fields": {
        "method": request.method, "path": request.path, "endpoint": name, "status": status,
        "caller": caller, "ms": round(elapsed * 1000, 2)}})


_WHO = {
    Audience.LOCAL: "local callers (the unix socket)",
    Audience.ADMIN: "local callers and network admins",
    Audience.MEMBER: "local callers and members of the network",
    Audience.PLACED: "local callers and the node the work is placed on",
    Audience.TENANT: "local callers and keys of accounts",
}


def make_middlewares(
    metrics: NodeMetrics,
    is_known: Callable[[str], bool],
    clock_skew_s: float,
    node_key: str = "",
    is_admin: Callable[[str], bool] = lambda _key: False,
    is_account: Callable[[str], bool] = lambda _key: False,
) -> list:
    """`is_known`: may this key sign requests (a member, or trusted by config); `is_admin`: is
    it a network admin's; both from the replicated state. `node_key`: this node's public key,
    which a signed request must name."""
    nonces = NonceCache(window_s=clock_skew_s)
    by_name = {e.name: e for e in (*routes.ENDPOINTS, routes.metrics)}

    @web.middleware
    async def errors(request: web.Request, handler: Route) -> web.StreamResponse:
        start = time.perf_counter()
        name = request.match_info.route.name or "unmatched"
        try:
            response = await handler(request)
        except BadRequest as exc:
            response = error_response(400, exc.code, exc.message, exc.fields)
        except HandlerError as exc:
            response = error_response(exc.status, exc.code,
                                      f"{exc.message}: {request.method} {request.path}",
                                      exc.fields)
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
        if node_key and not response.prepared:
            response.headers[H_NODE] = node_key  # public: lets a client learn whom it signs for
        elapsed = time.perf_counter() - start
        metrics.observe_request(name, response.status, elapsed)
        _log_request(request, name, response.status, elapsed)
        return response

    def refused(request: web.Request, exc: AuthFailure) -> web.Response:
        reason = str(exc).split(":")[0]
        metrics.auth_failures.labels(reason).inc()
        log.warning("request refused", extra={"fields": {
            "path": request.path, "reason": str(exc), "remote": request.remote}})
        return error_response(401, "unauthorized", str(exc))

    async def signed_caller(request: web.Request, audience: Audience) -> Caller | web.Response:
        body = await request.read()
        # A joining host's key is not known yet: for ANY_KEY routes the signature is
        # verified but the key may be any; their handler decides.
        # TENANT routes: a key of an account (not a member) is known there too.
        any_key = audience is Audience.ANY_KEY
        tenant = audience is Audience.TENANT
        known = (lambda _k: True) if any_key else (
            (lambda k: is_known(k) or is_account(k)) if tenant else is_known)
        try:
            key = verify_request(request.headers, request.method, request.raw_path, body,
                                 is_known=known, nonces=nonces, node_key=node_key)
        except AuthFailure as exc:
            return refused(request, exc)
        member = not (any_key or tenant) or is_known(key)
        return Caller("tcp", key=key, member=member, admin=member and is_admin(key),
                      account=tenant and is_account(key), remote=request.remote)

    @web.middleware
    async def authenticate(request: web.Request, handler: Route) -> web.StreamResponse:
        endpoint = by_name.get(request.match_info.route.name or "")
        audience = endpoint.audience if endpoint is not None else Audience.MEMBER
        if request.match_info.route.name == "openapi":
            audience = Audience.PUBLIC
        caller = _unix_caller(request)
        if caller is None:
            if audience is Audience.PUBLIC:
                caller = Caller("tcp", remote=request.remote)
            else:
                signed = await signed_caller(request, audience)
                if isinstance(signed, web.Response):
                    return signed
                caller = signed
        if not allows(audience, caller):
            log.warning("request outside the route's audience", extra={"fields": {
                "path": request.path, "audience": str(audience), "caller": str(caller)}})
            return error_response(403, "forbidden", f"{endpoint.name if endpoint else request.path}"
                                  f" is for {_WHO[audience]} only: {request.method} {request.path}")
        request[CALLER] = caller
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
    async def unavailable(*_args: Any, **_kwargs: Any) -> BaseModel:
        raise Unavailable(f"{endpoint.name}: that part of the node is not running here")

    return unavailable


def build_app(handler_objects: list[object], metrics: NodeMetrics,
              is_known: Callable[[str], bool], clock_skew_s: float, *, node_key: str = "",
              is_admin: Callable[[str], bool] = lambda _key: False,
              is_account: Callable[[str], bool] = lambda _key: False) -> web.Application:
    """Binds every endpoint to its handler, after checking each handler's signature against its
    endpoint (binding.check_handler): a mismatch raises HandlerMismatch before anything is
    served."""
    app = web.Application(
        middlewares=make_middlewares(metrics, is_known, clock_skew_s, node_key, is_admin,
                                     is_account),
        client_max_size=MAX_BODY,
    )
    mismatched: list[str] = []
    for endpoint in (*routes.ENDPOINTS, routes.metrics):
        handler = find_handler(handler_objects, endpoint.name)
        if handler is None:
            handler = _part_not_running(endpoint)
        else:
            try:
                check_handler(endpoint, handler)
            except HandlerMismatch as exc:
                mismatched.append(str(exc))
        app.router.add_route(endpoint.method, endpoint.path, bind(endpoint, handler, node_key),
                             name=endpoint.name)
    # The VM console: a WebSocket beside the typed routes (node/vmm/console.py). Its route
    # name is no endpoint's, so `authenticate` gives it the MEMBER audience.
    console = find_handler(handler_objects, "vm_console")
    if console is not None:
        async def vm_console(request: web.Request) -> web.StreamResponse:
            response: web.StreamResponse = await console(request, request[CALLER])
            return response

        app.router.add_get("/v1/vms/{instance}/console", vm_console, name="vm_console")
    if mismatched:
        raise HandlerMismatch(f"{len(mismatched)} handler(s) do not fit their endpoint:\n"
                              + "\n".join(mismatched))
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
    return app
