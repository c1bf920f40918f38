"""Confirm, then remove an account (an admin's `account.remove`, what `formation account rm`
writes): the dialog names it and says what goes. Dismissed with a line saying what was done,
None when kept."""

from __future__ import annotations

from typing import Any

from formation.api import state_models, state_routes
from formation.tui.account_rows import AccountRow
from formation.tui.screens.confirm import ConfirmScreen


class AccountRemoveScreen(ConfirmScreen[str | None]):
    box_id, state_id = "account-remove-box", "account-remove-state"

    def __init__(self, row: AccountRow) -> None:
        super().__init__()
        self.row = row

    def question(self) -> str:
        return f"[b]Remove account {self.row.name}[/b] ({len(self.row.keys)} key(s))?"

    def cost(self) -> str:
        used = self.row.usage.get("instances", 0)
        return (f"Its keys are refused from then on, on every node that knows the removal. "
                f"Its {used} instance(s) stay until an admin deletes them.")

    def progress(self) -> str:
        return f"removing {self.row.name}"

    async def perform(self, link: Any) -> str | None:
        op = await link.call(state_routes.state_append, state_models.AppendRequest(
            kind="account.remove", payload={"name": self.row.name}))
        return f"removed account {self.row.name}: op {op.id[:12]} replicates to every node"
