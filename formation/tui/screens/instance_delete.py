"""Confirm, then delete an instance: the dialog names it and says what goes (the VM and its
disk). Dismissed with the instance's name once deleted, None when kept."""

from __future__ import annotations

from typing import Any

from formation.api import vm_routes
from formation.api.vm_models import Instance
from formation.tui.instance_rows import node_text, truncate
from formation.tui.screens.confirm import ConfirmScreen


class InstanceDeleteScreen(ConfirmScreen[str | None]):
    box_id, state_id = "delete-box", "delete-state"
    verb, failed = "delete", "not deleted"

    def __init__(self, instance: Instance) -> None:
        super().__init__()
        self.instance = instance

    def question(self) -> str:
        i = self.instance
        return f"[b]Delete instance {truncate(i.name, 40)}[/b] ({i.id[:12]})?"

    def cost(self) -> str:
        i = self.instance
        return (f"It is {i.state} on {node_text(i)}. Its node ends the VM and removes its disk; "
                "this cannot be undone.")

    def progress(self) -> str:
        return f"deleting {self.instance.name}"

    async def perform(self, link: Any) -> str | None:
        await link.call(vm_routes.vm_delete, instance=self.instance.id)
        return self.instance.name
