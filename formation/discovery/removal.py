"""Removing a node from the network: an admin writes `node.remove` for a member. The op takes
the node's roles away on every replica, so its key stops being a member's key: its requests and
heartbeats are no longer accepted, the mesh drops its peer, and membership sees it go dead.
Only local callers (the console and CLI on the admin's host) may do this: a member reaching an
admin over TCP must not get the admin's signature on a removal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from formation.api import join_models as jm
from formation.api.errors import BadRequest, Conflict, NotFound
from formation.errors import OpError
from formation.identity import node_id_for

if TYPE_CHECKING:
    from formation.discovery.join import JoinComponent


async def remove_node(part: JoinComponent, node_id: str) -> jm.NodeRemoved:
    part.admit.require_admin()
    me = part.identity
    if node_id == me.node_id:
        raise Conflict("This node cannot remove itself; remove it from another admin's console")
    nodes = await part.store.view("nodes")
    found = next((n for n in nodes if node_id_for(bytes.fromhex(n["key"])) == node_id
                  and n.get("roles")), None)
    if found is None:
        raise NotFound(f"No member node {node_id} in this network (already removed, or never "
                       "admitted)")
    try:
        op = await part.store.append("node.remove", {"node": found["key"]})
    except OpError as exc:
        raise BadRequest(f"cannot remove {node_id}: {exc}") from None
    await part.state.after_local_write()
    name = str(found.get("name") or "")
    part.runtime.publish("join", "removed", {
        "node": node_id, "key": found["key"], "name": name, "op": op.id.hex()})
    return jm.NodeRemoved(id=node_id, key=found["key"], name=name, op=op.id.hex())
