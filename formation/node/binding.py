"""The start-up check that ties each handler to its endpoint, as Subiquity's `bind()` does: a
handler whose parameters or return type do not match its `Endpoint` stops the node before it
serves, instead of failing (or, worse, answering the wrong shape) on the first request.

The convention, read from the handler's type hints:

    async def state_view(self, body: Empty, caller: Caller, collection: str) -> sm.StateView
    async def state_log(self, body: Empty, caller: Caller, *, query: sm.LogQuery) -> sm.StateOpPage
    async def node_status(self, body: Empty, caller: Caller) -> Rendered[m.NodeStatus]
    async def events(self, body: Empty, caller: Caller, *, query: m.EventsQuery
                     ) -> AsyncIterator[m.Event]

`body` is the endpoint's request model, `caller` the authenticated Caller, then one `str`
parameter per `{name}` of the path and `query` when the endpoint has a query model. The return
type is the response model, `Rendered[response]` for pre-serialized bytes, or, for a stream,
an async iterator of response items."""

from __future__ import annotations

import collections.abc
import inspect
import typing
from collections.abc import Callable
from typing import Any

from formation.api.caller import Caller
from formation.api.endpoint import Endpoint
from formation.api.rendered import Rendered


class HandlerMismatch(RuntimeError):
    """A handler does not fit its endpoint: a programming error, found at start-up."""


def _name(hint: object) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is not None and args:
        return f"{getattr(origin, '__name__', origin)}[{', '.join(_name(a) for a in args)}]"
    return getattr(hint, "__name__", None) or str(hint)


def _returns_ok(endpoint: Endpoint, hint: object) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if endpoint.stream:
        return origin is collections.abc.AsyncIterator and args == (endpoint.response,)
    return hint is endpoint.response or (origin is Rendered and args == (endpoint.response,))


def check_handler(endpoint: Endpoint, handler: Callable[..., Any]) -> None:
    """Raises HandlerMismatch naming the endpoint and what is wrong."""
    where = f"handler of {endpoint.name} ({getattr(handler, '__qualname__', handler)})"
    try:
        hints = typing.get_type_hints(handler)
        params = list(inspect.signature(handler).parameters.values())
    except (NameError, TypeError, ValueError) as exc:
        raise HandlerMismatch(f"{where}: cannot read its type hints: {exc}") from None
    problems: list[str] = []
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2:
        problems.append("expected (body, caller, ...) parameters")
    else:
        body, caller = positional[0], positional[1]
        if hints.get(body.name) is not endpoint.request:
            problems.append(f"{body.name} is {_name(hints.get(body.name))}, the endpoint's "
                            f"request is {endpoint.request.__name__}")
        if hints.get(caller.name) is not Caller:
            problems.append(f"{caller.name} is {_name(hints.get(caller.name))}, expected Caller")
    wanted: dict[str, object] = {name: str for name in endpoint.path_params}
    if endpoint.query is not None:
        wanted["query"] = endpoint.query
    rest = {p.name: p for p in params[2:]}
    for name, hint in wanted.items():
        if name not in rest:
            problems.append(f"no parameter {name} ({_name(hint)})")
        elif hints.get(name) is not hint:
            problems.append(f"{name} is {_name(hints.get(name))}, expected {_name(hint)}")
    for name, param in rest.items():
        if name not in wanted and param.default is inspect.Parameter.empty:
            problems.append(f"parameter {name} is neither a path parameter nor the query")
    if "return" not in hints or not _returns_ok(endpoint, hints["return"]):
        shape = (f"AsyncIterator[{endpoint.response.__name__}]" if endpoint.stream else
                 f"{endpoint.response.__name__} or Rendered[{endpoint.response.__name__}]")
        problems.append(f"returns {_name(hints.get('return'))}, expected {shape}")
    if problems:
        raise HandlerMismatch(f"{where}: " + "; ".join(problems))
