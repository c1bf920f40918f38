"""Joining a network from the console: what the operator typed (an invite token or an admin's
HOST:PORT) turned into a request, and the join run through the node's join API. Asking without
a token waits for an admin; the console asks in short rounds (each one a request the link can
time out) until the admin decides or the operator stops waiting."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from formation.api import join_routes
from formation.api.join_models import JoinAskRequest, JoinResult, JoinTokenRequest
from formation.discovery import token as tokens
from formation.errors import FormationError
from formation.tui.link import NoAnswerInTime

if TYPE_CHECKING:
    from formation.api.models import Event
    from formation.tui.link import NodeLink

HOST_PORT = re.compile(r"^[^\s:]+:[0-9]{1,5}$|^\[[0-9a-fA-F:.]+\]:[0-9]{1,5}$")
ASK_ROUND_S = 6.0  # under the API client's own 10 s limit per request
TOKEN_JOIN_TIMEOUT_S = 9.5
OUTCOME_WAIT_S = 300.0  # 8 endpoints x 10 s, two 30 s syncs, and room: then it is lost


def join_request(text: str) -> JoinTokenRequest | JoinAskRequest | str:
    """The request for what was typed, or what is wrong with it in words. A token is checked
    here (its checksum catches a typo) before the node contacts anyone."""
    text = text.strip()
    if not text:
        return "type an invite token (FMN2-…) or an admin node's HOST:PORT"
    if text[:3].upper() == "FMN" and ":" not in text:
        if len(text) > 1024:
            return "invite token: too long to be a formation token"
        try:
            tokens.decode(text)
        except tokens.TokenError as exc:
            return f"invite {exc}"
        return JoinTokenRequest(token=text)
    if HOST_PORT.match(text) and 0 < int(text.rpartition(":")[2]) < 65536:
        return JoinAskRequest(address=text, wait_s=ASK_ROUND_S)
    return (f"expected an invite token (FMN2-…, from `formation invite create`) or an admin "
            f"node's HOST:PORT such as 10.0.0.1:7170, got {text[:40]!r}")


def reason(exc: FormationError) -> str:
    """What the node said (its message), else the client's sentence."""
    body = getattr(exc, "body", None)
    return body.message if body is not None and body.message else str(exc)


async def run_join(link: NodeLink, request: JoinTokenRequest | JoinAskRequest,
                   say: Callable[[str], None]) -> JoinResult:
    """Joins; raises FormationError with the node's reason. Cancel the task to stop waiting
    for an admin's approval."""
    if isinstance(request, JoinTokenRequest):
        return await _join_with_token(link, request, say)
    say(f"asking {request.address} to let this node join…")
    rounds = 0
    while True:
        try:
            return await link.call(join_routes.join_ask, request,
                                   timeout_s=ASK_ROUND_S + 3.0)
        except FormationError as exc:  # the client's ApiError carries the HTTP status
            if getattr(exc, "status", None) != 504:  # 504: not approved this round; ask again
                raise
        rounds += 1
        say(f"waiting for an admin of {request.address} to approve this node "
            f"({rounds * ASK_ROUND_S:.0f} s so far; esc stops waiting)")


async def _join_with_token(link: NodeLink, request: JoinTokenRequest,
                           say: Callable[[str], None]) -> JoinResult:
    say("joining with the invite token: contacting the network's admin…")
    with link.subscription() as events:
        try:
            return await link.call(join_routes.join_token, request,
                                   timeout_s=TOKEN_JOIN_TIMEOUT_S)
        except NoAnswerInTime:
            pass
        say("the node is still joining (an admin endpoint that does not answer takes 10 s); "
            "its steps show here as they happen, and then how it ended. esc stops waiting.")
        try:
            async with asyncio.timeout(OUTCOME_WAIT_S):
                return await join_outcome(events)
        except TimeoutError:
            raise FormationError(f"the node told no outcome of the join within "
                                 f"{OUTCOME_WAIT_S:.0f} s; see its log") from None


async def join_outcome(events: asyncio.Queue[Event]) -> JoinResult:
    """The result in the node's `join`/`joined` event; FormationError with the reason of a
    `join`/`failed` one."""
    while True:
        event = await events.get()
        if event.topic != "join":
            continue
        if event.kind == "joined":
            fields = JoinResult.model_fields
            return JoinResult.model_validate({k: v for k, v in event.data.items() if k in fields})
        if event.kind == "failed":
            raise FormationError(str(event.data.get("reason") or "the join failed"))
