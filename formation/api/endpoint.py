"""What an endpoint is. Kept apart from `routes` so every part's route module can import it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pydantic import BaseModel

from formation.api.caller import Audience

Req = TypeVar("Req", bound=BaseModel)
Resp = TypeVar("Resp", bound=BaseModel)


@dataclass(frozen=True)
class Endpoint(Generic[Req, Resp]):
    """One route. `audience` says who may call it (see `caller.Audience`; the server checks it
    before the handler runs); `stream` routes answer with server-sent events of `response`
    items; `query` models the query string; `errors` lists further error statuses the handler
    may answer with; `{name}` parts of `path` are path parameters, passed to the handler and to
    `NodeClient.call` as keyword arguments."""

    name: str
    method: str
    path: str
    request: type[Req]
    response: type[Resp]
    summary: str
    query: type[BaseModel] | None = None
    stream: bool = False
    errors: tuple[tuple[int, str], ...] = ()  # statuses beyond 400/401/500, documented in OpenAPI
    path_patterns: tuple[tuple[str, str], ...] = ()  # (param, regex) for `{param}` path parts
    audience: Audience = field(kw_only=True)  # no default: every route says who may call it

    @property
    def mutating(self) -> bool:
        return self.method not in ("GET", "HEAD", "OPTIONS")

    @property
    def public(self) -> bool:
        return self.audience is Audience.PUBLIC

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(part[1:-1] for part in self.path.split("/") if part.startswith("{"))
