"""Whether this node runs the edge: its `edge.enabled` setting, or the `edge` capability an
admin gave it with a node.capabilities op (state/capability_rules.py). The setting is the
operator's own switch on one host; the capability lets an admin make any member an edge from
anywhere, and take it back, without touching that host's config. Either is enough.

`edge_wanted` is the decision, a pure function of the setting and the nodes view;
`CapabilityWatch` re-reads the view whenever an op that can change the answer is applied and
reports the answer when it changes, so the edge starts and stops as the op lands."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from formation.node.state.capability_rules import EDGE, KIND, of
from formation.node.state.op_watch import OpWatch

if TYPE_CHECKING:
    from formation.node.state.store import StateStore

# Kinds that can change whether this node has a capability: the op itself, and the removal,
# re-admission or role change of the node (a node without roles leaves the nodes view).
WATCHED = frozenset({KIND, "node.remove", "node.admit", "node.roles", "invite.consume",
                     "network.genesis"})


def capabilities_of(own_key: str | None, nodes: list[dict[str, Any]]) -> list[str]:
    """This node's capabilities in the nodes view (none when it is not listed)."""
    mine = next((n for n in nodes if n.get("key") == own_key), None)
    return of(mine) if mine is not None else []


def edge_wanted(enabled: bool, own_key: str | None, nodes: list[dict[str, Any]]) -> bool:
    """Run the edge when the setting says so, or when this node holds the `edge` capability
    (only a current member is listed in the nodes view, so a removed node stops)."""
    return enabled or EDGE in capabilities_of(own_key, nodes)


class CapabilityWatch:
    def __init__(self, store: StateStore, own_key: str | None, enabled: bool,
                 apply: Callable[[bool], Awaitable[object]]) -> None:
        self.store, self.own_key, self.enabled, self.apply = store, own_key, enabled, apply
        self.wanted: bool | None = None  # what `apply` last took
        self._watch = OpWatch(store, WATCHED.__contains__, self.once, "capability change")

    async def once(self) -> None:
        wanted = edge_wanted(self.enabled, self.own_key, await self.store.view("nodes"))
        if wanted != self.wanted:
            await self.apply(wanted)
            self.wanted = wanted

    async def run(self) -> None:
        await self._watch.run()
