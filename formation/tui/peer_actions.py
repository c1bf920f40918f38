"""The console's network actions (invite, pending joins, remove a node), mixed into the app so
that their keys and palette entries work from every screen. Each opens a dialog that does the
work through the node API and says what happened in words."""

from __future__ import annotations

from textual.app import App

# The dialogs are imported when first opened, not with the app: the first frame pays for none
# of them (tests/unit/tui/test_console_imports.py).


class PeerActions(App[None]):
    """Methods of `FormationApp`, its base: self is the app."""

    def action_create_invite(self) -> None:
        from formation.tui.screens.invite import InviteScreen

        self.push_screen(InviteScreen())

    def action_pending_joins(self) -> None:
        from formation.tui.screens.pending_joins import PendingJoinsScreen

        self.push_screen(PendingJoinsScreen())

    def action_remove_node(self) -> None:
        """Removes the node highlighted on the peers screen, after a confirmation naming it."""
        from formation.tui.screens.peers import PeersScreen
        from formation.tui.screens.remove_node import RemoveNodeScreen

        screen = self.screen
        if not isinstance(screen, PeersScreen):
            self.switch_mode("peers")
            self.notify("choose the node with ↑↓, then press x", timeout=4)
            return
        row = screen.selected_row()
        if row is None:
            self.notify("no node selected: ↑↓ to choose one", severity="warning")
            return
        if row.member == "self":
            self.notify("this is the node the console is attached to; remove it from another "
                        "admin's console", severity="warning", timeout=5)
            return
        self.push_screen(RemoveNodeScreen(row.node_id, row.name))
