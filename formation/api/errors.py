"""The errors a handler may raise. Handlers never see HTTP: they raise one of these and the
server (formation/node/server.py) turns it into the status and ErrorBody named here. Anything
else a handler raises is a 500 that names the endpoint, never a traceback to the caller."""

from __future__ import annotations

from typing import ClassVar

from formation.api.models import FieldError


class HandlerError(Exception):
    """A refusal with one line for a person; `fields` point at the offending input."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, fields: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = list(fields or [])


class BadRequest(HandlerError):
    """The input is invalid (a field, the body, the query)."""

    status, code = 400, "invalid_request"


class Forbidden(HandlerError):
    """The caller may not do this, or the node refuses to (not an admin, token refused)."""

    status, code = 403, "forbidden"


class NotFound(HandlerError):
    status, code = 404, "not_found"


class Conflict(HandlerError):
    """The request contradicts the node's state (already in another network, removing itself)."""

    status, code = 409, "conflict"


class Unprocessable(HandlerError):
    """Valid input the network cannot satisfy (a VM size no node can hold)."""

    status, code = 422, "unprocessable_entity"


class PayloadTooLarge(HandlerError):
    status, code = 413, "request_entity_too_large"


class TooManyRequests(HandlerError):
    """This caller asked too often or holds too much (per-source limits); it may retry later."""

    status, code = 429, "too_many_requests"


class BadGateway(HandlerError):
    """Another node the handler had to ask answered badly or not at all."""

    status, code = 502, "bad_gateway"


class Unavailable(HandlerError):
    """Not now: a part is starting, a queue is full; the caller may retry."""

    status, code = 503, "service_unavailable"


class GatewayTimeout(HandlerError):
    """Another node did not answer (or approve) in time."""

    status, code = 504, "gateway_timeout"
