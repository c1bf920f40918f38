"""Enrollment. First this node: hostname, underlay interface (DHCP or static), resources offered
and admin SSH keys, prefilled from its saved settings. Then a node in no network can found one
(name and mesh address range → the state store's genesis op, this node its first admin), or
join one: paste an invite token, type an admin's HOST:PORT, or pick a host from the live list of
what discovery (mDNS, bootstrap, gossip) found. The plan line says what will happen; every field
is checked before anything is written, then the settings are saved and the network founded or
joined, each step on screen. Progress comes from the node's `join` events; every error is on
screen in words naming its field, and esc stops waiting or goes back."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, DataTable, Input, Select, Static, TextArea
from textual.worker import Worker

from formation.api import console_routes, host_routes, state_routes
from formation.api.console_models import EditableSettings
from formation.api.join_models import JoinAskRequest
from formation.api.models import Event
from formation.errors import FormationError
from formation.tui.actions import ConsoleAction
from formation.tui.commands import ScreenCommands
from formation.tui.console_app import console_app
from formation.tui.enroll_plan import NodePlan, node_plan, plan_text
from formation.tui.enroll_settings import save_settings
from formation.tui.enroll_text import (
    DEFAULT_CIDR,
    DISCOVERED_COLUMNS,
    FOUND_HELP,
    JOIN_HELP,
    OPEN_ONLY,
    discovered_rows,
    discovery_text,
    intro_text,
    request_from,
)
from formation.tui.join_flow import join_request, reason, run_join
from formation.tui.network import NetworkSnapshot
from formation.tui.screens.base import ConsoleScreen
from formation.tui.widgets.node_fields import NODE_TITLE, NodeFieldsForm

# The genesis op is signed and written to disk: more than the link's 3 s on a slow disk or under
# emulation. A timeout here would say "not founded" while the node goes on and founds it.
FOUND_TIMEOUT_S = 9.5  # under the API client's own 10 s limit per request


class EnrollScreen(ConsoleScreen):
    TITLE_TEXT = "enrollment"
    AUTO_FOCUS = ""  # the screen's keys work until the operator chooses to type (f, j)
    SCREEN_ACTIONS = (
        ConsoleAction("h", "edit_node", "Enroll: this node's fields",
                      "Hostname, underlay interface, resources offered, admin SSH keys"),
        ConsoleAction("f", "start_founding", "Enroll: found a network",
                      "Save this node's fields, then found a network (this node its admin)"),
        ConsoleAction("j", "start_joining", "Enroll: join a network",
                      "Save this node's fields, then join with a token or an admin's address"),
        ConsoleAction("ctrl+r", "reload_node", "Enroll: reload",
                      "The saved settings and the host's interfaces (drops unsaved edits)"),
    )
    BINDINGS = [Binding("escape", "back", "Back"),
                *[Binding(a.key, a.action, a.title.removeprefix("Enroll: "), show=a.key != "h")
                  for a in SCREEN_ACTIONS]]
    COMMANDS = ConsoleScreen.COMMANDS | {ScreenCommands}

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="enroll-body"):
            yield Static("reading the state store…", id="enroll-intro", classes="prose")
            yield NodeFieldsForm(id="node-form")
            yield Static(FOUND_HELP, id="found-help")
            with Horizontal(id="found-form"):
                yield Input(id="net-name", placeholder="network name, e.g. lab")
                yield Input(DEFAULT_CIDR, id="net-cidr", placeholder=DEFAULT_CIDR)
                yield Button("Found", id="found", variant="primary")
            yield Static(JOIN_HELP, id="join-help")
            with Horizontal(id="join-form"):
                yield Input(id="join-with",
                            placeholder="FMN2-… invite token, or HOST:PORT of an admin")
                yield Button("Join", id="join", variant="primary")
            yield Static("", id="discovery-state")
            yield DataTable(id="discovered", cursor_type="row", zebra_stripes=True)
        yield Static("", id="enroll-plan")
        yield Static("", id="enroll-state")

    def on_mount(self) -> None:
        super().on_mount()
        self.joining: Worker[None] | None = None
        self.following_join = False  # progress events may trail the join's own answer
        self.join_steps: list[str] = []
        self.peer_addresses: list[str] = []
        self.saved: EditableSettings | None = None
        self.node_loaded = False
        table = self.query_one("#discovered", DataTable)
        for title, width in DISCOVERED_COLUMNS:
            table.add_column(title, width=width)
        console_app(self).event_listeners.append(self._on_event)
        self.watch(self.app, "network", self.show, init=True)
        self.watch(self.app, "node_status", self._status_changed, init=True)
        self.watch(self.app, "link_status", self._link_changed, init=True)

    def on_unmount(self) -> None:
        listeners = console_app(self).event_listeners
        if self._on_event in listeners:
            listeners.remove(self._on_event)

    def show(self, net: NetworkSnapshot | None) -> None:
        self.query_one("#enroll-intro", Static).update(intro_text(net))
        open_ = net is not None and net.network is None and "state view network" not in net.errors
        for form in self.query(f"{OPEN_ONLY}, #found-help, #enroll-plan"):
            form.display = open_
        forms = list(self.query(OPEN_ONLY))
        if not open_ and self.focused is not None and any(
                f in self.focused.ancestors_with_self for f in forms):
            self.set_focus(None)  # a hidden input would swallow the navigation keys
        self.query_one("#discovery-state", Static).update(discovery_text(net))
        peers = net.discovered.peers if net and net.discovered else []
        rows = discovered_rows(net.discovered) if net and net.discovered else []
        if rows != getattr(self, "_shown", None):
            self._shown = rows
            table = self.query_one("#discovered", DataTable)
            cursor = table.cursor_row
            chosen = self.peer_addresses[cursor] if 0 <= cursor < len(self.peer_addresses) \
                else None
            self.peer_addresses = [p.address for p in peers]
            table.clear()
            for row in rows:
                table.add_row(*row)
            if chosen in self.peer_addresses:  # "seen" changes often: keep the operator's pick
                table.move_cursor(row=self.peer_addresses.index(chosen))

    # this node's fields ---------------------------------------------------------------------
    def _link_changed(self, status) -> None:
        if status.online and not self.node_loaded:
            self.load_node()

    def _status_changed(self, status) -> None:
        self.query_one(NodeFieldsForm).show_totals(status.resources if status else None)
        self.show_plan()

    @work(exclusive=True, group="enroll-load")
    async def load_node(self) -> None:
        """The saved settings (to prefill) and the host's interfaces (to choose from)."""
        link = console_app(self).link
        if link is None:
            return
        form = self.query_one(NodeFieldsForm)
        presenter = console_app(self).presenter
        try:
            saved = presenter.settings(await link.call(console_routes.get_settings))
            found = presenter.interfaces(await link.call(host_routes.host_interfaces))
        except FormationError as exc:
            self.say(f"cannot read this node's settings and interfaces: {reason(exc)}",
                     error=True)
            return
        self.node_loaded = True
        self.saved = saved if saved.config_file else None
        form.show_interfaces(found)
        form.fill(saved)
        form.disabled = self.saved is None
        if not found.networkd:
            form.query_one("#node-title", Static).update(
                f"{NODE_TITLE} · no systemd-networkd here: underlay applies at next boot")
        self.show_plan()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.show_plan()

    def on_select_changed(self, event: Select.Changed) -> None:
        self.show_plan()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self.show_plan()

    def node_plan(self) -> NodePlan | list[str]:
        status = console_app(self).node_status
        return node_plan(self.query_one(NodeFieldsForm).values(), self.saved,
                         status.resources if status else None)

    def show_plan(self) -> None:
        """What founding or joining will do, as the fields say now."""
        if not self.is_mounted or not self.node_loaded:
            return
        plan = self.node_plan()
        widget = self.query_one("#enroll-plan", Static)
        if isinstance(plan, list):
            more = f" (and {len(plan) - 1} more)" if len(plan) > 1 else ""
            widget.update(f"[b]plan[/b]: not ready: {plan[0]}{more}")
            return
        status = console_app(self).node_status
        name = self.query_one("#net-name", Input).value.strip() or "…"
        cidr = self.query_one("#net-cidr", Input).value.strip()
        node = plan_text(plan, self.saved, status.resources if status else None)
        widget.update(f"[b]plan[/b]: {node}; then found network '{name}' ({cidr}) or join")

    def action_reload_node(self) -> None:
        self.node_loaded = False
        self.load_node()

    def action_edit_node(self) -> None:
        if self.query_one("#node-form").display:
            self.query_one("#hostname", Input).focus()

    def checked(self, action: str, network_error: str | None) -> NodePlan | None:
        """The node's plan if every field (the network's too) is right; else every fault on
        screen, each naming its field, and nothing written."""
        if not self.node_loaded:
            self.say(f"[b]not {action}[/b]: this node's settings are not read yet; try again "
                     "when the node answers", error=True)
            return None
        plan = self.node_plan()
        errors = (plan if isinstance(plan, list) else []) + (
            [network_error] if network_error else [])
        self.query_one(NodeFieldsForm).mark(errors)
        if not errors and not isinstance(plan, list):  # a list of faults is never empty
            return plan
        self.say(f"[b]not {action}[/b] (nothing written): " + (
            errors[0] if len(errors) == 1 else "\n".join(f"· {e}" for e in errors)), error=True)
        return None

    async def save_node(self, link, plan: NodePlan, action: str) -> str | None:
        """Saves the settings; the progress line, or None after saying why not."""
        self.say("· saving this node's settings…")
        try:
            done, self.saved = await save_settings(link, plan, self.saved)
        except FormationError as exc:
            self.say(f"[b]not {action}[/b]: {exc}", error=True)
            return None
        if self.saved is not None:
            self.query_one(NodeFieldsForm).fill(self.saved)
        return f"· {done}"

    def action_start_founding(self) -> None:
        if self.query_one("#found-form").display:
            self.query_one("#net-name", Input).focus()

    def action_start_joining(self) -> None:
        if self.query_one("#join-form").display:
            self.query_one("#join-with", Input).focus()

    def action_back(self) -> None:
        """Stops waiting for a join first; then back to the dashboard."""
        if self.joining is not None and self.joining.is_running:
            self.joining.cancel()
            self.following_join = False
            self.say("stopped waiting. The admin may still approve this node's request; "
                     "join again or found a network.", error=True)
            return
        self.app.switch_mode("dashboard")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "join-with":
            self.join_network(event.value)
        elif event.input.id in ("net-name", "net-cidr"):
            self.found_network()
        else:  # this node's fields: Enter moves on, it never founds by surprise
            self.focus_next()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "found":
            self.found_network()
        elif event.button.id == "join":
            self.join_network(self.query_one("#join-with", Input).value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a discovered host: ask it to let this node join."""
        if event.data_table.id != "discovered" or not self.query_one("#join-form").display:
            return
        if 0 <= event.cursor_row < len(self.peer_addresses):
            address = self.peer_addresses[event.cursor_row]
            self.query_one("#join-with", Input).value = address
            self.join_network(address)

    def _on_event(self, event: Event) -> None:
        if event.topic == "join" and event.kind == "progress" and self.following_join:
            step = str(event.data.get("step", ""))
            if step and step not in self.join_steps:
                self.join_steps.append(step)
                self.say("\n".join(f"· {s}" for s in self.join_steps[-4:]))

    def join_network(self, text: str) -> None:
        self.progress = ""
        request = join_request(text)
        plan = self.checked("joined", request if isinstance(request, str) else None)
        if plan is None or isinstance(request, str):
            return
        link = self.answering_link("joined")
        if link is None:
            return
        self.join_steps = []
        self.following_join = True
        self.joining = self.run_worker(self._join(link, request, plan), name="join",
                                       group="enroll", exclusive=True, exit_on_error=False)

    def answering_link(self, action: str):
        """The link to the node if it answers; else None, having said so."""
        app = console_app(self)
        link = app.link
        if link is None or not app.link_status.online:
            self.say(f"[b]not {action}[/b]: the node does not answer; try again when it does",
                     error=True)
            return None
        return link

    async def _join(self, link, request, plan: NodePlan) -> None:
        saved = await self.save_node(link, plan, "joined")
        if saved is None:
            self.following_join = False
            return
        self.progress = saved
        try:
            result = await run_join(link, request, self.say)
        except FormationError as exc:
            self.following_join = False
            waiting = isinstance(request, JoinAskRequest)
            self.say(f"[b]not joined[/b]: {reason(exc)}. "
                     + ("Check the address and press Enter again, " if waiting else
                        "Ask the admin for a new token, ")
                     + "or esc to go back.", error=True)
            return
        self.following_join = False
        self.join_steps = list(result.steps)
        self.say("\n".join([f"· {s}" for s in result.steps[-3:]] + [
            f"[b]joined network {result.network_name}[/b] as {result.node_id}: {result.ops} "
            "ops replicated. d: dashboard, p: its nodes."]))
        self.set_focus(None)
        console_app(self).read_network()

    @work(exclusive=True, group="enroll")
    async def found_network(self) -> None:
        self.progress = ""
        name = self.query_one("#net-name", Input).value.strip()
        cidr = self.query_one("#net-cidr", Input).value.strip()
        request = request_from(name, cidr)
        plan = self.checked("founded", request if isinstance(request, str) else None)
        if plan is None or isinstance(request, str):
            return
        link = self.answering_link("founded")
        if link is None:
            return
        saved = await self.save_node(link, plan, "founded")
        if saved is None:
            return
        self.progress = saved
        self.say(f"· founding network {name} ({cidr}): writing the genesis op…")
        try:
            op = await link.call(state_routes.state_create_network, request,
                                 timeout_s=FOUND_TIMEOUT_S)
        except FormationError as exc:  # ApiError (refused) and NodeUnreachable
            self.say(f"[b]not founded[/b]: {reason(exc)}. Change the fields and press Enter again, "
                     "or Esc for the dashboard.", error=True)
            return
        self.say(f"founded network {name}: genesis op {op.id[:12]}; this node is its first "
                 "admin and claims its mesh address next. Esc: dashboard.")
        console_app(self).read_network()

    def say(self, text: str, error: bool = False) -> None:
        """The action's progress so far (`self.progress`), then `text`."""
        state = self.query_one("#enroll-state", Static)
        state.set_class(error, "-error")
        state.update("\n".join(t for t in (getattr(self, "progress", ""), text) if t))
