"""Create an invite: asks this node (an admin) for a one-time token and shows it as a line to
copy or type and as a QR code. A token with one IPv4 endpoint is 78 characters (97 grouped by
dashes): QR version 4, 33 modules a side, 37 with the quiet zone, so 37 columns by 19 rows of
half blocks; beside the text that is a 78x22 dialog, whole at 80x24 (tty1, most SSH terminals).
A token with many endpoints makes a bigger code: where that does not fit, the code scrolls under
the text and the dialog says how big a terminal shows it whole; the token always shows whole."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from formation.api import join_routes
from formation.api.join_models import Invite, InviteRequest
from formation.errors import FormationError
from formation.tui.console_app import console_app
from formation.tui.join_flow import reason
from formation.tui.qr_text import qr_lines


def invite_text(invite: Invite) -> str:
    until = datetime.fromtimestamp(invite.expires_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"one-time {'/'.join(r for r in invite.roles if r != 'member') or 'node'} invite "
            f"to network {invite.network[:12]}…, valid until {until}, via "
            f"{', '.join(invite.endpoints)}; admin {invite.admin_fingerprint}. On the joining "
            "host: `formation join TOKEN`, or paste it in its console (e).")


def token_lines(token: str, width: int = 35) -> str:
    """The token broken after a dash where a line would pass `width`, so each line holds whole
    groups to type (the dashes stay: the lines joined are the token)."""
    lines: list[str] = []
    for group in token.split("-"):
        if lines and len(lines[-1]) + len(group) + 1 <= width:
            lines[-1] += "-" + group
        else:
            if lines:
                lines[-1] += "-"
            lines.append(group)
    return "\n".join(lines)


SIDE_TEXT_COLUMNS = 36  # the invite's text and the token, wrapped beside the code
DIALOG_FRAME_COLUMNS = 5  # border, padding and the gap between text and code
DIALOG_FRAME_ROWS = 3  # border and the title line


class InviteScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "dismiss", "Close"), Binding("y", "copy", "Copy token"),
                Binding("r", "create", "New token")]

    def __init__(self) -> None:
        super().__init__()
        self.invite: Invite | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="invite-box", classes="dialog"):
            yield Label("[b]Invite a host[/b] · y: copy token · r: new token · esc: close")
            with Horizontal(id="invite-body"):
                with Vertical(id="invite-text"):
                    yield Static("asking the node for an invite…", id="invite-state")
                    yield Static("", id="invite-token")
                    yield Static("", id="invite-qr-note")
                with VerticalScroll(id="invite-qr-box"):
                    yield Static("", id="invite-qr")

    def on_mount(self) -> None:
        self.qr_size: tuple[int, int] | None = None  # columns, rows
        self.action_create()

    def on_resize(self, event: Resize) -> None:
        self.fit_qr()

    def fit_qr(self) -> None:
        """Beside the text if the whole code fits there; else under it, scrolling, with a
        line saying what size of terminal shows it whole."""
        note = self.query_one("#invite-qr-note", Static)
        if self.qr_size is None:
            note.update("")
            return
        columns, rows = self.qr_size
        need = (columns + SIDE_TEXT_COLUMNS + DIALOG_FRAME_COLUMNS, rows + DIALOG_FRAME_ROWS)
        beside = self.app.size.width >= need[0] and self.app.size.height >= need[1]
        self.query_one("#invite-box").set_class(beside, "-beside")
        note.update("" if beside else
                    f"The QR code is {columns}x{rows} characters: it shows whole in a terminal "
                    f"of at least {need[0]}x{need[1]}; here it scrolls below.")

    @work(exclusive=True, group="invite")
    async def action_create(self) -> None:
        link = console_app(self).link
        state = self.query_one("#invite-state", Static)
        if link is None:
            state.update("[b]no invite[/b]: not connected to a node yet")
            return
        state.update("asking the node for an invite…")
        try:
            invite = await link.call(join_routes.invite_create, InviteRequest())
        except FormationError as exc:
            state.update(f"[b]no invite[/b]: {reason(exc)}")
            state.add_class("-error")
            return
        await self.show(invite)

    async def show(self, invite: Invite) -> None:
        """The invite's text, its token and its QR code."""
        state = self.query_one("#invite-state", Static)
        state.remove_class("-error")
        self.invite = invite
        state.update(invite_text(invite))
        self.query_one("#invite-token", Static).update(token_lines(invite.token))
        # segno takes about 0.1 s for a token on a slow host: not on the event loop
        lines = await asyncio.to_thread(qr_lines, invite.token)
        self.qr_size = (max(map(len, lines)), len(lines))
        self.query_one("#invite-qr", Static).update("\n".join(lines))
        self.fit_qr()

    def action_copy(self) -> None:
        if self.invite is None:
            self.notify("no token yet", severity="warning")
            return
        self.app.copy_to_clipboard(self.invite.token)
        self.notify("token sent to the terminal's clipboard (OSC 52)", timeout=3)
