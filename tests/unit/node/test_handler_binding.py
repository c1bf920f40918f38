"""The start-up check of handler signatures: every handler of a default node fits its endpoint,
and a handler that does not (wrong body, caller, path parameter, query or return type) stops
build_app with a message naming the endpoint and the mismatch, before anything is served."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from formation.api import models as m
from formation.api import routes
from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api.caller import Caller
from formation.api.rendered import Rendered
from formation.node.binding import HandlerMismatch, check_handler
from formation.node.metrics import NodeMetrics
from formation.node.server import build_app


class Good:
    async def state_view(self, body: m.Empty, caller: Caller, collection: str) -> sm.StateView:
        raise NotImplementedError

    async def state_log(self, body: m.Empty, caller: Caller, *,
                        query: sm.LogQuery) -> sm.StateOpPage:
        raise NotImplementedError

    async def node_status(self, body: m.Empty, caller: Caller) -> Rendered[m.NodeStatus]:
        raise NotImplementedError

    async def events(self, body: m.Empty, caller: Caller, *,
                     query: m.EventsQuery) -> AsyncIterator[m.Event]:
        raise NotImplementedError


class Bad:
    async def state_append(self, body: sm.OpBatch, caller: Caller) -> sm.StateOp:
        raise NotImplementedError

    async def state_view(self, body: m.Empty, caller: str, collection: str) -> sm.StateView:
        raise NotImplementedError

    async def state_op(self, body: m.Empty, caller: Caller) -> sm.StateOp:
        raise NotImplementedError

    async def state_log(self, body: m.Empty, caller: Caller) -> sm.StateOpPage:
        raise NotImplementedError

    async def state_heads(self, body: m.Empty, caller: Caller) -> sm.StateView:
        raise NotImplementedError

    async def node_status(self, body: m.Empty, caller: Caller) -> Rendered[m.Health]:
        raise NotImplementedError

    async def events(self, body: m.Empty, caller: Caller, *, query: m.EventsQuery) -> m.Event:
        raise NotImplementedError


def test_handlers_that_fit_pass() -> None:
    good = Good()
    check_handler(sr.state_view, good.state_view)
    check_handler(sr.state_log, good.state_log)
    check_handler(routes.node_status, good.node_status)
    check_handler(routes.events, good.events)


@pytest.mark.parametrize(("endpoint", "name", "says"), [
    (sr.state_append, "state_append", "body is OpBatch, the endpoint's request is AppendRequest"),
    (sr.state_view, "state_view", "caller is str, expected Caller"),
    (sr.state_op, "state_op", "no parameter op_id"),
    (sr.state_log, "state_log", "no parameter query"),
    (sr.state_heads, "state_heads", "returns StateView, expected StateHeads"),
    (routes.node_status, "node_status", "expected NodeStatus or Rendered[NodeStatus]"),
    (routes.events, "events", "expected AsyncIterator[Event]"),
])
def test_a_mismatch_names_the_endpoint_and_what_is_wrong(endpoint, name: str, says: str) -> None:
    with pytest.raises(HandlerMismatch, match=rf"handler of {name} .*{re_escape(says)}"):
        check_handler(endpoint, getattr(Bad(), name))


def test_build_app_refuses_every_mismatched_handler_at_once() -> None:
    with pytest.raises(HandlerMismatch, match="7 handler") as caught:
        build_app([Bad()], NodeMetrics(), lambda _key: False, 60.0)
    for name in ("state_append", "state_view", "state_op", "state_log", "state_heads",
                 "node_status", "events"):
        assert f"handler of {name} " in str(caught.value)


async def test_every_handler_of_a_default_node_fits(node) -> None:
    """The node started, so build_app checked them all; this says so explicitly."""
    assert node.unserved_endpoints == []


def re_escape(text: str) -> str:
    import re

    return re.escape(text)
