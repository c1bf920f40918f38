"""Who may call a route (its audience) and who did (the caller). The server decides both, in
one place: it reads the transport and the request signature, looks the key up in the replicated
state, refuses a caller outside the endpoint's audience, and hands the handler a `Caller`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from formation.api.errors import Forbidden


class Audience(StrEnum):
    """Who may call an endpoint. The unix socket (mode 0660, the node's own operators) may call
    every route; over TCP every request but PUBLIC ones must be signed, and the key decides."""

    LOCAL = "local"  # the unix socket only: node-local settings, logs, writes signed as this node
    ADMIN = "admin"  # or a request signed by a network admin's key (replicated state)
    MEMBER = "member"  # or signed by a member's key (or one the config trusts)
    PLACED = "placed"  # or signed by a member the handler finds the work placed on
    TENANT = "tenant"  # or signed by a key of an account (replicated state): its own things
    ANY_KEY = "any_key"  # or signed by any key, known or not (a host asking to join)
    PUBLIC = "public"  # anyone, unsigned (health, hello, the document, metrics)


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of one request. `key` is the verified signing key (hex) of a TCP
    request; `member`/`admin` are its roles in the network when it was checked. A unix socket
    caller is the node's operator and acts as this node; its pid and uid come from
    SO_PEERCRED."""

    transport: Literal["unix", "tcp"]
    key: str | None = None
    member: bool = False
    admin: bool = False
    account: bool = False  # the key is an account's (a tenant), as the state store says
    pid: int | None = None
    uid: int | None = None
    remote: str | None = None

    @property
    def local(self) -> bool:
        return self.transport == "unix"

    def require_key(self) -> str:
        """The signing key of a node-to-node request; a local caller has none."""
        if self.key is None:
            raise Forbidden("A joining node signs its request with its node key")
        return self.key

    def placed_here(self, node_key: str) -> bool:
        """For PLACED routes: the local operator, or the node the work is placed on."""
        return self.local or (self.member and self.key == node_key)

    def __str__(self) -> str:
        if self.local:
            return f"unix:pid={self.pid},uid={self.uid}"
        if self.key is None:
            return f"tcp:{self.remote} unsigned"
        return f"key:{self.key}" if self.member else f"newkey:{self.key}"


def allows(audience: Audience, caller: Caller) -> bool:
    """The one rule: may this caller call a route of this audience."""
    if caller.local or audience is Audience.PUBLIC:
        return True
    if caller.key is None:
        return False
    if audience is Audience.ANY_KEY:
        return True
    if audience in (Audience.MEMBER, Audience.PLACED):
        return caller.member
    if audience is Audience.ADMIN:
        return caller.admin
    if audience is Audience.TENANT:
        return caller.account
    return False  # LOCAL
