"""The joining side: `formation join TOKEN` and `formation join --request HOST:PORT`.

Token join: find a bootstrap endpoint whose node key hashes to the token's pin (that admin tells
the network id), prove the token to it in the handshake (which names the invite op, found there
by the token's one-time key), receive the state until this replica holds the invite op, write
this node's invite.consume (signed by its node key, with the token's proof) and hand it to the
admin, which applies it: from then on this node is a member and replicates with the admin like
any other member."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from nacl.signing import SigningKey

from formation.api import discovery_routes
from formation.api import join_models as jm
from formation.api import join_routes as jr
from formation.api import state_models as sm
from formation.api.caller import Caller
from formation.api.client import ApiError, NodeClient, NodeUnreachable
from formation.api.errors import (
    BadGateway,
    BadRequest,
    Conflict,
    Forbidden,
    GatewayTimeout,
    HandlerError,
)
from formation.discovery import token as tokens
from formation.errors import OpError

if TYPE_CHECKING:
    from formation.discovery.join import JoinComponent

CONTACT_TIMEOUT_S = 10.0
SYNC_TIMEOUT_S = 30.0
KNOCK_EVERY_S = 1.0


class BootstrapUnreachable(BadGateway):
    pass


def _refused(exc: ApiError, where: str) -> HandlerError:
    message = exc.body.message.split(": POST /v1/")[0]
    if exc.status == 403:
        return Forbidden(f"Refused by {where}: {message}")
    return BadGateway(f"{where} answered {exc.status}: {message}")


def _hex_bytes(text: str, length: int) -> bytes | None:
    """`length` bytes written in hex by another node, or None for anything else."""
    try:
        found = bytes.fromhex(text)
    except ValueError:
        return None
    return found if len(found) == length else None


def _invite_id(answer: jm.JoinHandshakeAnswer, endpoint: str) -> bytes:
    invite = _hex_bytes(answer.invite, 32)
    if invite is None:
        raise BadGateway(f"{endpoint} named no invite op for the token")
    return invite


class JoinerSide:
    def __init__(self, part: JoinComponent) -> None:
        self.part = part
        self._lock = asyncio.Lock()

    def _progress(self, steps: list[str], text: str) -> None:
        steps.append(text)
        self.part.runtime.publish("join", "progress", {"step": text})

    def _client(self, address: str, timeout_s: float | None = None,
                node_key: str | None = None) -> NodeClient:
        """`node_key`: the node the requests are signed for, when known (the admin the token
        pins); else the client asks the node at `address`."""
        return NodeClient.tcp(address, self.part.identity, timeout_s=timeout_s or CONTACT_TIMEOUT_S,
                              node_key=node_key)

    def _already_elsewhere(self, network: bytes | None) -> None:
        mine = self.part.store.network_id
        if mine is not None and (network is None or mine != network):
            raise Conflict(f"This node already belongs to network {mine.hex()}")

    async def _result(self, admin_key: str, steps: list[str]) -> jm.JoinResult:
        store = self.part.store
        network = store.network_id
        if network is None:  # admitted means the network's ops are here: a bug if not
            raise RuntimeError("admitted, but the state store holds no network")
        rows = await store.view("network")
        return jm.JoinResult(
            network=network.hex(),
            network_name=rows[0]["name"] if rows else "", admitted_by=admin_key,
            node_id=self.part.identity.node_id,
            ops=store.replica.count, steps=steps)

    # with a token ---------------------------------------------------------------------------
    async def join_token(self, body: jm.JoinTokenRequest, caller: Caller) -> jm.JoinResult:
        """Every token join ends with a `join` event, `joined` (the JoinResult and `via`) or
        `failed` (`reason`, `status`): a client that stopped waiting for the answer (the
        console gives up after 10 s; an admin that does not answer takes 10 s per endpoint)
        learns the outcome from the event stream."""
        try:
            result = await self._join_token(body)
        except HandlerError as exc:
            self._failed(exc.message, exc.status)
            raise
        except Exception as exc:
            self._failed(f"{type(exc).__name__}: {exc}", 500)
            raise
        return result

    def _failed(self, reason: str, status: int) -> None:
        self.part.runtime.publish("join", "failed", {"reason": reason, "status": status})

    async def _join_token(self, body: jm.JoinTokenRequest) -> jm.JoinResult:
        try:
            token = tokens.decode(body.token)
        except tokens.TokenError as exc:
            raise BadRequest(str(exc)) from None
        if time.time() > token.expires_s:
            raise Forbidden("Token expired: ask an admin for a new one")
        async with self._lock:
            return await self._join_with(token)

    async def _join_with(self, token: tokens.InviteToken) -> jm.JoinResult:
        steps: list[str] = []
        endpoint, admin_key, network = await self._contact(token, steps)
        store, me = self.part.store, self.part.identity
        proof = SigningKey(token.seed).sign(tokens.handshake_proof_message(
            network, token.token_key, me.public_key_hex)).signature
        hello = jm.JoinHandshake(network=network.hex(), token_key=token.token_key.hex(),
                                 proof=proof.hex(), address=self._own_address())
        async with self._client(endpoint, SYNC_TIMEOUT_S, admin_key) as client:
            answer = await self._handshake(client, endpoint, hello)
            if not answer.admitted:
                invite = _invite_id(answer, endpoint)
                await self._receive_state(client, endpoint, hello, answer, invite, steps)
                try:
                    op = await store.consume_invite(invite, token.seed)
                except OpError as exc:
                    raise Forbidden(f"Token refused: {exc}") from None
                self._progress(steps, "signed the admission op (invite.consume) with this "
                               "node's key")
                hello.consume = sm.OpBatch(ops=self.part.wire.pack([op.raw]), count=1)
                answer = await self._handshake(client, endpoint, hello)
        if not answer.admitted:
            raise Forbidden(f"{endpoint} did not admit this node")
        self._progress(steps, f"admitted to network {answer.network_name!r} by {endpoint}")
        await self._start_replicating(endpoint, admin_key, steps)
        result = await self._result(admin_key, steps)
        self.part.runtime.publish("join", "joined", {
            **result.model_dump(), "via": endpoint})
        return result

    async def _contact(self, token: tokens.InviteToken,
                       steps: list[str]) -> tuple[str, str, bytes]:
        """The first bootstrap endpoint that answers with a key matching the token's pin, and
        the network that pinned admin is in. A changed endpoint leads to another node, whose
        key does not match: it is skipped."""
        failures = []
        for endpoint in token.endpoints:
            try:
                async with self._client(endpoint) as client:
                    hello = await client.call(discovery_routes.discovery_hello)
            except (ApiError, NodeUnreachable) as exc:
                failures.append(f"{endpoint} ({exc})")
                continue
            if not token.matches(bytes.fromhex(hello.public_key)):
                failures.append(f"{endpoint} (answered as another node, {hello.name})")
                continue
            network = _hex_bytes(hello.network, 16)
            if network is None:
                failures.append(f"{endpoint} ({hello.name} belongs to no network)")
                continue
            self._already_elsewhere(network)
            self._progress(steps, f"reached {endpoint} ({hello.name}), the admin the token "
                           f"names ({tokens.format_pin(token.pin)})")
            return endpoint, hello.public_key, network
        raise BootstrapUnreachable(
            "Bootstrap unreachable: no endpoint of the token answered as its admin: "
            + "; ".join(failures))

    async def _handshake(self, client: NodeClient, endpoint: str,
                         hello: jm.JoinHandshake) -> jm.JoinHandshakeAnswer:
        try:
            return await client.call(jr.join_handshake, hello)
        except ApiError as exc:
            raise _refused(exc, endpoint) from None
        except NodeUnreachable as exc:
            raise BootstrapUnreachable(f"Bootstrap unreachable: {exc}") from None

    async def _receive_state(self, client, endpoint, hello, answer, invite, steps) -> None:
        store = self.part.store
        received = 0
        while True:
            if answer.batch is not None and answer.batch.count:
                verdicts = await store.ingest(self.part.wire.unpack(answer.batch.ops),
                                              origin="sync")
                received += sum(v.status == "accepted" for v in verdicts)
            if await store.has(invite) or not answer.more:
                break
            hello.vv = answer.next_vv
            answer = await self._handshake(client, endpoint, hello)
        if not await store.has(invite):
            raise Forbidden("The admin's state does not hold the invite")
        self._progress(steps, f"received the network's state ({received} ops)")

    def _own_address(self) -> str:
        endpoints = self.part.advertised_endpoints()
        return endpoints[0] if endpoints else ""

    async def _start_replicating(self, endpoint: str, admin_key: str, steps: list[str]) -> None:
        """Adds the admin as a replication peer and pulls until this replica has its heads."""
        state = self.part.state
        assert state.replication is not None
        self.part.add_replication_peer(endpoint, admin_key)
        peer = next(p for p in state.replication.peers if p.address == endpoint)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SYNC_TIMEOUT_S
        while loop.time() < deadline:
            await state.replication.anti_entropy.sync_with(peer)
            if peer.ok and self.part.store.network_id is not None:
                break
            await asyncio.sleep(0.2)
        else:
            raise GatewayTimeout(f"Admitted, but syncing with {endpoint} failed: {peer.error}")
        await self.part.widen_once()
        self._progress(steps, f"synced with {endpoint}; replicating with the network")

    # without a token ------------------------------------------------------------------------
    async def join_ask(self, body: jm.JoinAskRequest, caller: Caller) -> jm.JoinResult:
        self._already_elsewhere(None)
        async with self._lock:
            return await self._ask(body.address, body.wait_s)

    async def _ask(self, address: str, wait_s: float) -> jm.JoinResult:
        steps: list[str] = []
        svc = self.part.runtime
        try:
            async with self._client(address) as client:
                hello = await client.call(discovery_routes.discovery_hello)
        except (ApiError, NodeUnreachable) as exc:
            raise BootstrapUnreachable(f"Bootstrap unreachable: {address}: {exc}") from None
        knock = jm.JoinKnock(name=svc.settings.name, address=self._own_address())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        announced = False
        async with self._client(address, node_key=hello.public_key) as client:
            while True:
                try:
                    answer = await client.call(jr.join_knock, knock)
                except ApiError as exc:
                    raise _refused(exc, address) from None
                except NodeUnreachable as exc:
                    raise BootstrapUnreachable(f"Bootstrap unreachable: {exc}") from None
                if answer.status == "admitted":
                    break
                if answer.status == "rejected":
                    raise Forbidden(f"An admin of {address} rejected this join")
                if not announced:
                    announced = True
                    self._progress(steps, f"asked {address} ({hello.name}) to join; waiting "
                                   f"as pending {answer.id} for an admin's approval")
                if loop.time() > deadline:
                    raise GatewayTimeout(f"Not approved within {wait_s:g} s; still pending as "
                                         f"{answer.id}")
                await asyncio.sleep(KNOCK_EVERY_S)
        self._progress(steps, f"approved by an admin of {address}")
        await self._start_replicating(address, hello.public_key, steps)
        return await self._result(hello.public_key, steps)
