"""The replicated state store (DESIGN.md "State"): signed ops in a hash graph, judged against
their causal past, folded into CRDT views, persisted in SQLite, synced between nodes."""

from formation.node.state.op import Op, OpError
from formation.node.state.replica import Replica, Verdict
from formation.node.state.store import StateStore

__all__ = ["Op", "OpError", "Replica", "StateStore", "Verdict"]
