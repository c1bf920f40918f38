"""Confirm, then remove a node from the network (an admin writes `node.remove`). Unlike the
other confirm dialogs it stays open to show the op that did it; esc then closes it, dismissed
with whether the node was removed."""

from __future__ import annotations

from typing import Any

from formation.api import join_routes
from formation.tui.console_app import console_app
from formation.tui.screens.confirm import ConfirmScreen


class RemoveNodeScreen(ConfirmScreen[bool]):
    box_id, state_id = "remove-box", "remove-state"

    def __init__(self, node_id: str, name: str) -> None:
        super().__init__()
        self.node_id = node_id
        self.name_shown = name or "?"
        self.removed = False

    def question(self) -> str:
        return f"[b]Remove node {self.name_shown}[/b] ({self.node_id}) from the network?"

    def cost(self) -> str:
        return ("It loses its roles on every replica: its requests and heartbeats are no longer "
                "accepted and the mesh drops it. It can come back only with a new invite.")

    def progress(self) -> str:
        return f"removing {self.name_shown}"

    async def perform(self, link: Any) -> bool:
        result = await link.call(join_routes.node_remove, id=self.node_id)
        self.state.remove_class("-error")
        self.state.update(f"removed {result.name or self.name_shown} ({result.id}): op "
                          f"{result.op[:12]} replicates to every node.\n\nesc: close")
        return True

    def finish(self, outcome: bool) -> None:
        self.removed = outcome
        console_app(self).read_network()

    def kept(self) -> bool:
        return self.removed

    def action_keep(self) -> None:
        if self.removed or not self.busy:
            self.dismiss(self.removed)
