"""The invite dialog's QR code against a real admin node. A real token with one IPv4 endpoint
makes a version-4 code, 37x19 characters with its quiet zone (a text row holds two modules): at
80x24, the size of tty1 and of most SSH terminals, it is on screen whole beside the token, no
scrolling. A token with many endpoints makes a bigger code: there the code scrolls and the dialog
says what size shows it whole. Checked on the regions Textual rendered."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Static

from formation.api import state_routes
from formation.api.client import NodeClient
from formation.api.join_models import Invite
from formation.api.state_models import CreateNetworkRequest
from formation.discovery import token as tokens
from formation.identity.keys import fingerprint
from formation.tui.app import FormationApp
from formation.tui.qr_text import qr_code, qr_lines
from formation.tui.screens.invite import InviteScreen
from tests.loopback_nodes import loopback_nodes
from tests.tui.conftest import client_factory, settle, wait_for
from tests.tui.test_console_snapshots import FIXED_NETWORK, founded_peers, snapshot_app

FAST = {"heartbeat_s": 0.2, "suspect_after_s": 0.6, "dead_after_s": 1.0}


@pytest.fixture
async def admin(short_tmp: Path):
    async with loopback_nodes(short_tmp, 1, FAST, trust_each_other=False) as (node,):
        async with NodeClient.unix(node.settings.api.socket) as client:
            await client.call(state_routes.state_create_network,
                              CreateNetworkRequest(name="lab", cidr="10.66.0.0/16"))
        yield node


def whole_on_screen(widget, size: tuple[int, int]) -> bool:
    region = widget.region  # where it was drawn, clipped to its scrolling container
    return region.x >= 0 and region.y >= 0 and region.right <= size[0] \
        and region.bottom <= size[1]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_whole_code_is_on_screen(admin, size) -> None:
    app = FormationApp(client_factory(admin), request_timeout_s=3.0, poll_s=0.5)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.link_status.online)
        await pilot.press("v")
        assert isinstance(app.screen, InviteScreen)
        await wait_for(pilot, lambda: app.screen.qr_size is not None)
        screen = app.screen
        assert qr_code(screen.invite.token).version <= 4
        lines = qr_lines(screen.invite.token)
        assert (len(lines[0]), len(lines)) == (37, 19)
        qr = screen.query_one("#invite-qr", Static)
        await wait_for(pilot, lambda: qr.region.height == len(lines), what="the code laid out")
        assert str(qr.render()).splitlines() == lines
        assert screen.query_one("#invite-box").has_class("-beside")
        assert (qr.region.width, qr.region.height) == (len(lines[0]), len(lines))
        assert whole_on_screen(qr, size)
        assert screen.query_one("#invite-qr-box").max_scroll_y == 0
        assert screen.query_one("#invite-qr-box").max_scroll_x == 0
        token = screen.query_one("#invite-token", Static)
        assert str(token.render()).replace("\n", "") == screen.invite.token
        assert whole_on_screen(token, size)
        assert whole_on_screen(screen.query_one("#invite-box"), size)
        assert str(screen.query_one("#invite-qr-note", Static).render()) == ""


async def test_a_code_too_big_for_80x24_scrolls_and_the_dialog_says_what_shows_it(admin) -> None:
    """Eight IPv6 endpoints: a code no 24-row terminal holds."""
    size = (80, 24)
    app = FormationApp(client_factory(admin), request_timeout_s=3.0, poll_s=0.5)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.link_status.online)
        await pilot.press("v")
        await wait_for(pilot, lambda: app.screen.qr_size is not None)
        screen = app.screen
        endpoints = [f"[fd00::{i}:1234:5678:9abc]:7170" for i in range(8)]
        big = tokens.new_token(endpoints, b"\x03" * 32, 1767268800, b"\x02" * 16)
        await screen.show(screen.invite.model_copy(update={"token": big.encode(),
                                                           "endpoints": endpoints}))
        box = screen.query_one("#invite-qr-box")
        await wait_for(pilot, lambda: box.max_scroll_y > 0, what="the big code laid out")
        columns, rows = screen.qr_size
        assert rows > size[1]  # nothing shows it whole here
        assert not screen.query_one("#invite-box").has_class("-beside")
        token = screen.query_one("#invite-token", Static)
        assert str(token.render()).replace("\n", "") == big.encode()
        assert whole_on_screen(token, size)
        note = str(screen.query_one("#invite-qr-note", Static).render()).replace("\n", " ")
        need = f"{columns + 41}x{rows + 3}"
        assert f"{columns}x{rows} characters" in note and need in note
        assert screen.query_one("#invite-qr-box").max_scroll_y > 0
        assert screen.query_one("#invite-box").region.bottom <= size[1]
        # a terminal that size: the code moves beside the text, whole
        await pilot.resize_terminal(columns + 41, rows + 3)
        await wait_for(pilot, lambda: screen.query_one("#invite-box").has_class("-beside"))
        qr = screen.query_one("#invite-qr", Static)
        await wait_for(pilot, lambda: whole_on_screen(qr, (columns + 41, rows + 3)),
                       what="the code laid out beside the text")


FIXED_ADMIN = b"\x03" * 32
FIXED_INVITE = tokens.new_token(["192.0.2.10:7170"], FIXED_ADMIN, 1767268800, b"\x02" * 16)


def with_a_fixed_invite():
    """The dialog over the peers screen, showing a token made of fixed bytes (the node's own
    are random: the dialog's real flow is tested above)."""

    async def run_before(pilot) -> None:
        await founded_peers(pilot)
        await pilot.press("v")
        screen = pilot.app.screen
        await wait_for(pilot, lambda: screen.invite is not None
                       or screen.query_one("#invite-state").has_class("-error"))
        await screen.workers.wait_for_complete()
        await screen.show(Invite(
            token=FIXED_INVITE.encode(), invite="01" * 32, network=FIXED_NETWORK,
            expires_ms=FIXED_INVITE.expires_s * 1000, roles=["member"],
            endpoints=list(FIXED_INVITE.endpoints),
            admin_fingerprint=fingerprint(FIXED_ADMIN)))
        await settle(pilot)

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_invite_snapshot(snap_compare, short_tmp: Path, size) -> None:
    assert snap_compare(snapshot_app(short_tmp), terminal_size=size,
                        run_before=with_a_fixed_invite())
