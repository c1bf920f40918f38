"""Enrollment. A node in no network can found one here (name and mesh address range → the state
store's genesis op, this node its first admin), with progress and every error on screen. Joining
an existing network (invite token, bootstrap host, or a network discovered on this link) arrives
with `formation join`; until then the screen shows the hosts discovery finds, live, and says
plainly that it cannot join them yet."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

from pydantic import ValidationError
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Input, Static

from formation.api import state_routes
from formation.api.discovery_models import DiscoveredPeers
from formation.api.state_models import CreateNetworkRequest
from formation.errors import FormationError
from formation.tui.network import NetworkSnapshot
from formation.tui.network_rows import ago
from formation.tui.screens.base import ConsoleScreen

DEFAULT_CIDR = "10.42.0.0/16"
JOIN_LATER = ("[b]Joining[/b] a network: run `formation join TOKEN` (an admin's invite) or "
              "`formation join --request HOST:PORT` (an admin approves) in a shell on this "
              "host; this console cannot join yet.")
DISCOVERED_COLUMNS = (("name", 14), ("id", 27), ("kind", 10), ("network", 12),
                      ("address", 21), ("found by", 16), ("seen", 5))


def request_from(name: str, cidr: str) -> CreateNetworkRequest | str:
    """The request, or what is wrong with the fields, in words."""
    try:
        network = ipaddress.ip_network(cidr, strict=True)
    except ValueError as exc:
        return f"address range: {exc}; expected a CIDR such as {DEFAULT_CIDR}"
    if network.version != 4 or network.prefixlen > 28:
        return "address range: expected an IPv4 range of at least 16 addresses (/28 or wider)"
    try:
        return CreateNetworkRequest(name=name, cidr=cidr)
    except ValidationError as exc:
        return "; ".join(f"network name: expected 1-63 lowercase letters, digits and - "
                         f"(not at either end), got {name!r}" if "name" in e["loc"]
                         else f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                         for e in exc.errors())


def intro_text(net: NetworkSnapshot | None) -> str:
    if net is None:
        return "reading the state store…"
    network = net.network
    if network is not None:
        return (f"This node is in network [b]{network.get('name')}[/b] (id {network.get('id')}, "
                f"{network.get('cidr')}). Press d for the dashboard, p for its nodes.")
    if "state view network" in net.errors:
        return f"cannot read the state store: {net.errors['state view network']}"
    return ("[b]This node is in no network.[/b] Found a new one: this node becomes its first "
            "admin. Press f, type its name and address range, then Enter:")


def discovered_rows(found: DiscoveredPeers) -> list[tuple[str, ...]]:
    now = datetime.now(UTC)
    return [(p.name or "?", p.node_id, p.kind, p.network[:12], p.address, ",".join(p.sources),
             ago((now - p.last_seen).total_seconds())) for p in found.peers]


def discovery_text(net: NetworkSnapshot | None) -> str:
    if net is None:
        return ""
    found = net.discovered
    if found is None:
        return f"discovery: cannot read ({net.errors.get('discovery', 'no answer')})"
    return f"hosts discovered: {len(found.peers)} · mDNS {found.mdns}"


class EnrollScreen(ConsoleScreen):
    TITLE_TEXT = "enrollment"
    AUTO_FOCUS = ""  # the screen's keys work until the operator chooses to type (f)
    BINDINGS = [Binding("escape", "app.switch_mode('dashboard')", "Back"),
                Binding("f", "start_founding", "Found a network")]

    def compose_body(self) -> ComposeResult:
        yield Static("reading the state store…", id="enroll-intro", classes="prose")
        with Horizontal(id="found-form"):
            yield Input(id="net-name", placeholder="network name, e.g. lab")
            yield Input(DEFAULT_CIDR, id="net-cidr", placeholder=DEFAULT_CIDR)
            yield Button("Found", id="found", variant="primary")
        yield Static("", id="enroll-state")
        yield Static(JOIN_LATER, classes="prose", id="join-later")
        yield Static("", id="discovery-state")
        yield DataTable(id="discovered", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one("#discovered", DataTable)
        for title, width in DISCOVERED_COLUMNS:
            table.add_column(title, width=width)
        self.watch(self.app, "network", self.show, init=True)

    def show(self, net: NetworkSnapshot | None) -> None:
        self.query_one("#enroll-intro", Static).update(intro_text(net))
        form = self.query_one("#found-form")
        form.display = net is not None and net.network is None \
            and "state view network" not in net.errors
        if not form.display and self.focused is not None and form in self.focused.ancestors:
            self.set_focus(None)  # a hidden input would swallow the navigation keys
        self.query_one("#discovery-state", Static).update(discovery_text(net))
        rows = discovered_rows(net.discovered) if net and net.discovered else []
        if rows != getattr(self, "_shown", None):
            self._shown = rows
            table = self.query_one("#discovered", DataTable)
            table.clear()
            for row in rows:
                table.add_row(*row)

    def action_start_founding(self) -> None:
        if self.query_one("#found-form").display:
            self.query_one("#net-name", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.found_network()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "found":
            self.found_network()

    @work(exclusive=True, group="enroll")
    async def found_network(self) -> None:
        name = self.query_one("#net-name", Input).value.strip()
        cidr = self.query_one("#net-cidr", Input).value.strip()
        request = request_from(name, cidr)
        if isinstance(request, str):
            self.say(f"[b]not founded[/b]: {request}", error=True)
            return
        link = self.app.link  # type: ignore[attr-defined]
        if link is None or not self.app.link_status.online:  # type: ignore[attr-defined]
            self.say("[b]not founded[/b]: the node does not answer; try again when it does",
                     error=True)
            return
        self.say(f"founding network {name} ({cidr}): writing the genesis op…")
        try:
            op = await link.call(state_routes.state_create_network, request)
        except FormationError as exc:  # ApiError (refused) and NodeUnreachable
            body = getattr(exc, "body", None)
            why = body.message if body is not None else str(exc)
            self.say(f"[b]not founded[/b]: {why}. Change the fields and press Enter again, "
                     "or Esc for the dashboard.", error=True)
            return
        self.say(f"founded network {name}: genesis op {op.id[:12]}; this node is its first "
                 "admin and claims its mesh address next. Esc: dashboard.")
        self.app.read_network()  # type: ignore[attr-defined]

    def say(self, text: str, error: bool = False) -> None:
        state = self.query_one("#enroll-state", Static)
        state.set_class(error, "-error")
        state.update(text)
