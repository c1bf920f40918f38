"""What discovery's parts are given by the node that runs them.

Discovery is a part of the node, so the node may import it and never the other way round
(the import-linter contracts in pyproject.toml hold this). What discovery uses of the node
service, the state store, the host's underlay addresses and the op wire format is written
here as small protocols; node/parts.py hands each part the real objects in its constructor."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine, Sequence
from typing import Any, Protocol

from formation.config.settings import NodeSettings
from formation.identity import NodeIdentity


class Events(Protocol):
    def subscribe(self, topic: str | None = None) -> AsyncIterable[Any]:
        """The node's events on `topic`, from now on."""
        ...


class NodeRuntime(Protocol):
    """The node service as discovery's parts see it in `start(service)`."""

    @property
    def settings(self) -> NodeSettings: ...

    @property
    def identity(self) -> NodeIdentity | None: ...

    @property
    def bus(self) -> Events: ...

    def publish(self, topic: str, kind: str, data: dict | None = None) -> None: ...

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task: ...

    def listen_addresses(self) -> list[str]: ...

    def is_known_key(self, key_hex: str) -> bool: ...


def started(service: NodeRuntime | None, part: str) -> NodeRuntime:
    """The node service a part runs in, which its `start(service)` keeps. A part used before
    it started is a wiring bug: it is told by name, not as an AttributeError on None."""
    if service is None:
        raise RuntimeError(f"the {part} part is used before it started")
    return service


def identity_of(service: NodeRuntime) -> NodeIdentity:
    """This node's identity, which the node service has before any part starts."""
    identity = service.identity
    if identity is None:
        raise RuntimeError("the node service has no identity yet (parts start after it does)")
    return identity


UnderlaySubscriber = Callable[[list[str], list[str]], Awaitable[None]]


class Underlay(Protocol):
    """The host's underlay addresses, followed (node/net/underlay_watch.py). Given only where
    what is advertised follows them (an API on every address, no configured addresses)."""

    async def addresses(self) -> list[str]: ...

    def subscribe(self, subscriber: UnderlaySubscriber) -> None: ...

    def unsubscribe(self, subscriber: UnderlaySubscriber) -> None: ...


# the state store, as joining uses it ---------------------------------------------------------

class SignedOp(Protocol):
    @property
    def id(self) -> bytes: ...

    @property
    def raw(self) -> bytes: ...

    @property
    def kind(self) -> str: ...

    @property
    def author(self) -> bytes: ...

    @property
    def payload(self) -> dict[str, Any]: ...


class Verdict(Protocol):
    @property
    def status(self) -> str: ...

    @property
    def reason(self) -> str: ...

    @property
    def message(self) -> str: ...


class OpWire(Protocol):
    """Ops as the join handshake carries them (node/state/wire.py and op.py). `unpack` raises
    a ValueError for anything that is no packed batch, `decode` an OpError for no op."""

    def pack(self, raws: list[bytes]) -> str: ...

    def unpack(self, text: str) -> list[bytes]: ...

    def decode(self, raw: bytes) -> SignedOp: ...


class Counted(Protocol):
    @property
    def count(self) -> int: ...


class JoinStore(Protocol):
    """The replicated state store (node/state/store.py). Refused writes raise OpError
    (formation.errors)."""

    @property
    def network_id(self) -> bytes | None: ...

    @property
    def members(self) -> frozenset[str]: ...

    @property
    def admins(self) -> frozenset[str]: ...

    @property
    def replica(self) -> Counted: ...

    def is_member_key(self, key_hex: str) -> bool: ...

    async def view(self, collection: str) -> list[dict]: ...

    async def append(self, kind: str, payload: dict) -> SignedOp: ...

    async def create_invite(self, expires_ms: int, roles: tuple[str, ...] = ...,
                            token_seed: bytes | None = None) -> tuple[SignedOp, bytes]: ...

    async def consume_invite(self, invite_id: bytes, token_seed: bytes) -> SignedOp: ...

    async def ingest(self, raws: list[bytes],
                     origin: str | None = None) -> Sequence[Verdict]: ...

    async def ops_after(self, vv: dict[bytes, int], limit: int,
                        max_bytes: int) -> tuple[list[bytes], bool, dict[bytes, int]]: ...

    async def has(self, op_id: bytes) -> bool: ...


class ReplicationPeer(Protocol):
    @property
    def address(self) -> str: ...

    @property
    def ok(self) -> bool | None: ...

    @property
    def error(self) -> str: ...


class AntiEntropy(Protocol):
    async def sync_with(self, peer: Any) -> int: ...


class Replication(Protocol):
    """Replication with the other members (node/state/sync.py)."""

    @property
    def peers(self) -> Sequence[ReplicationPeer]: ...

    @property
    def anti_entropy(self) -> AntiEntropy: ...

    def add_peer(self, address: str, key: str) -> list: ...

    async def reconnect(self) -> None: ...


class StatePart(Protocol):
    """The state store's part of the node (node/state/component.py), started before joining."""

    @property
    def replication(self) -> Replication | None: ...

    def require_store(self) -> JoinStore: ...

    async def after_local_write(self) -> None: ...
