"""The Accounts screen and its quota form as SVG snapshots (80x24, and the screen at 120x40):
a node started inside the console (the embedded path) with the fixed identity of the other
snapshots, two accounts with fixed keys and quotas, and an instance alice's own key made (so
her usage shows). Nothing on these screens depends on time. Update with --snapshot-update."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from formation.api import state_routes
from formation.api.state_models import CreateNetworkRequest
from tests.tui.accounts_support import ALICE, seed_accounts, tenant_create
from tests.tui.conftest import settle, wait_for
from tests.tui.test_console_snapshots import settled, snapshot_app


class LinkClient:
    """The app's own link, as the support helpers' client (they only `call`)."""

    def __init__(self, link) -> None:
        self.link = link

    async def call(self, endpoint, body=None, **params):
        return await self.link.call(endpoint, body, timeout_s=9.5, **params)


async def accounts_shown(pilot) -> None:
    await settled(pilot)
    app = pilot.app
    client = LinkClient(app.link)
    await client.call(state_routes.state_create_network,
                      CreateNetworkRequest(name="lab", cidr="10.42.0.0/16"))
    await seed_accounts(client)
    await tenant_create(client, ALICE, "alice", "web")
    await pilot.press("u")
    await wait_for(pilot, lambda: bool(app.screen.query("#accounts-table"))
                   and app.screen.query_one("#accounts-table").row_count == 2
                   and "1/2" in str(app.screen.query_one("#accounts-table").get_row_at(0)),
                   what="both accounts, alice's instance counted")
    await settle(pilot)


async def quota_form(pilot) -> None:
    await accounts_shown(pilot)
    await pilot.press("m")
    await wait_for(pilot, lambda: bool(pilot.app.screen.query("#quota-box")))
    # A blinking cursor is drawn or not depending on the instant of the shot (it failed that
    # way on every few runs): a steady cursor makes the picture one.
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await settle(pilot)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_accounts_snapshot(snap_compare, short_tmp: Path, size) -> None:
    assert snap_compare(snapshot_app(short_tmp), terminal_size=size, run_before=accounts_shown)


def test_account_quota_snapshot(snap_compare, short_tmp: Path) -> None:
    assert snap_compare(snapshot_app(short_tmp), terminal_size=(80, 24), run_before=quota_form)
