"""The state store's API handlers: one method per endpoint in `api.state_routes`."""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING

from formation.api import state_models as sm
from formation.api.caller import Caller
from formation.api.errors import BadRequest, NotFound
from formation.api.models import Empty
from formation.node.state import views, wire
from formation.node.state.account_invite_handlers import AccountInviteHandlers
from formation.node.state.ca_handlers import CaHandlers
from formation.node.state.op import Op, OpError, decode
from formation.node.state.route_handlers import RouteHandlers

if TYPE_CHECKING:
    from formation.node.state.component import StateComponent
    from formation.node.state.store import StateStore

log = logging.getLogger(__name__)

MAX_REFUSALS = 100  # per push answer: enough to debug a peer, small whatever the batch
MESSAGE_CHARS = 300


def op_model(op: Op, with_raw: bool = False) -> sm.StateOp:
    return sm.StateOp(**op.summary(),
                      raw=base64.b64encode(op.raw).decode() if with_raw else None)


def _op_id(text: str, field: str = "op_id") -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != 32:
        raise BadRequest(f"{field}: expected an op id, 64 hex characters")
    return value


def _vv(data: dict[str, int]) -> dict[bytes, int]:
    try:
        return {bytes.fromhex(k): int(v) for k, v in data.items()}
    except ValueError:
        raise BadRequest("vv: expected author keys as hex") from None


# routes and the tenant relay, the CA's root, account invites
class StateHandlers(RouteHandlers, CaHandlers, AccountInviteHandlers):
    def __init__(self, component: StateComponent) -> None:
        self.component = component

    @property
    def store(self) -> StateStore:
        return self.component.require_store()

    async def state_status(self, body: Empty, caller: Caller) -> sm.StateStatus:
        status = await self.store.status()
        return sm.StateStatus(**status, peers=self.component.peer_states())

    async def state_heads(self, body: Empty, caller: Caller) -> sm.StateHeads:
        store = self.store
        heads = await store.heads()
        return sm.StateHeads(network=store.network_id.hex() if store.network_id else None,
                             heads=[h.hex() for h in heads], ops=store.replica.count)

    async def state_view(self, body: Empty, caller: Caller,
                         collection: str) -> sm.StateView:
        if collection not in views.COLLECTIONS:
            raise NotFound(f"No collection {collection!r}; one of "
                           + ", ".join(views.COLLECTIONS))
        return sm.StateView(collection=collection, items=await self.store.view(collection))

    async def state_op(self, body: Empty, caller: Caller, op_id: str) -> sm.StateOp:
        raw = await self.store.get(_op_id(op_id))
        if raw is None:
            raise NotFound(f"No op {op_id} in this replica")
        return op_model(decode(raw), with_raw=True)

    async def state_log(self, body: Empty, caller: Caller, *,
                        query: sm.LogQuery) -> sm.StateOpPage:
        rows = await self.store.log(query.after, query.limit)
        return sm.StateOpPage(ops=[op_model(decode(raw)) for _, raw in rows],
                              next_after=rows[-1][0] if len(rows) == query.limit else None)

    async def state_create_network(self, body: sm.CreateNetworkRequest,
                                   caller: Caller) -> sm.StateOp:
        try:
            op = await self.store.create_network(body.name, body.cidr)
        except OpError as exc:
            raise BadRequest(f"cannot create the network: {exc}") from None
        await self.component.after_local_write()
        return op_model(op)

    async def state_append(self, body: sm.AppendRequest, caller: Caller) -> sm.StateOp:
        try:
            op = await self.store.append(body.kind, body.payload)
        except OpError as exc:
            raise BadRequest(f"op refused ({exc.reason}): {exc}") from None
        return op_model(op)

    async def state_verify(self, body: Empty, caller: Caller) -> sm.VerifyResult:
        faults = await self.store.verify()
        return sm.VerifyResult(ops=self.store.replica.count, faults=faults)

    async def state_rebuild(self, body: Empty, caller: Caller) -> sm.RebuildResult:
        return sm.RebuildResult(**await self.store.rebuild())

    async def state_sync_push(self, body: sm.OpBatch, caller: Caller) -> sm.PushResult:
        try:
            raws = wire.unpack(body.ops)
        except wire.WireError as exc:
            raise BadRequest(str(exc)) from None
        origin = caller.key or "local"
        verdicts = await self.store.ingest(raws, origin=origin)
        counts = {s: sum(v.status == s for v in verdicts)
                  for s in ("accepted", "duplicate", "buffered", "refused")}
        if counts["buffered"]:
            self.component.wake_anti_entropy()
        refusals = [sm.OpRefusal(index=i, id=v.id.hex() if v.id else None, reason=v.reason,
                                 message=v.message[:MESSAGE_CHARS])
                    for i, v in enumerate(verdicts) if v.status == "refused"]
        return sm.PushResult(**counts, refusals=refusals[:MAX_REFUSALS])

    async def state_sync_range(self, body: sm.RangeRequest, caller: Caller) -> sm.RangeResult:
        raws, more, after = await self.store.ops_after(_vv(body.vv), body.limit, 700_000)
        return sm.RangeResult(batch=sm.OpBatch(ops=wire.pack(raws), count=len(raws)), more=more,
                              next_vv={a.hex(): s for a, s in after.items()})

    async def state_sync_walk(self, body: sm.WalkRequest, caller: Caller) -> sm.OpBatch:
        want = [_op_id(w, "want[]") for w in body.want]
        raws = await self.store.walk_back(want, _vv(body.vv), body.limit, 700_000)
        return sm.OpBatch(ops=wire.pack(raws), count=len(raws))
