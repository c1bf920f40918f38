"""Instances: every instance of the network, live. Read again on each `vm` or `state` event (an
instance op replicated, a lifecycle change on some node) and on a slow poll; the uptime column
ticks between reads. Every action is a key (no mouse needed, over SSH too): create from an
image (+), start (b), stop (h), restart (t), delete after a confirmation (x), details (enter).
Start, stop, restart and delete are changes of desired state: the screen shows the request
accepted, and the state follows from the instance's node. The owner column names the account
that owns each instance (or '@' and the node that wrote node-owned work); f cycles a filter
through all, each account, and node-owned work."""

from __future__ import annotations

import time

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from formation.api import vm_routes
from formation.api.models import Event
from formation.api.vm_models import Instance
from formation.errors import FormationError
from formation.tui.column_fit import refit_table
from formation.tui.console_app import console_app
from formation.tui.instance_actions import ACTION_BINDINGS, InstanceActions
from formation.tui.instance_rows import (
    COLUMNS,
    PRIORITY,
    count_text,
    filter_text,
    instance_cells,
    next_owner,
    owned_by,
    owner_choices,
    selected_text,
)
from formation.tui.join_flow import reason
from formation.tui.network import NetworkSnapshot

POLL_S = 5.0
TICK_S = 1.0
TOPICS = frozenset({"vm", "state"})
UPTIME_COLUMN = [title for title, _ in COLUMNS].index("uptime")
NO_NETWORK = "This node is in no network, so there are no instances (press e to found one)."


class InstancesScreen(InstanceActions):
    TITLE_TEXT = "instances"
    BINDINGS = [Binding("plus", "create", "Create", key_display="+"), *ACTION_BINDINGS,
                Binding("f", "filter_owner", "Owner filter", show=False),
                Binding("enter", "details", "Details", show=False)]

    def __init__(self) -> None:
        super().__init__()
        self.instances: list[Instance] = []  # those shown (the owner filter applied)
        self.every_instance: list[Instance] = []
        self.owner_filter: str | None = None  # None: all; an account; NODE_OWNED
        self.read_at = time.monotonic()
        self._shown: list[tuple[str, ...]] | None = None
        self.shown_columns: list[int] = []
        self.notice = ""
        self._network_id: str | None = None

    def compose_body(self) -> ComposeResult:
        yield Static("reading the instances…", id="instances-state")
        yield DataTable(id="instances-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="instance-selected")

    def on_mount(self) -> None:
        super().on_mount()
        self._set_columns(self.app.size.width)
        console_app(self).event_listeners.append(self._on_event)
        self.set_interval(POLL_S, self.reload)
        self.set_interval(TICK_S, self._tick)
        self.watch(self.app, "network", self._network_read, init=False)
        self.reload()

    def on_resize(self, event: events.Resize) -> None:
        if self._set_columns(event.size.width):
            self._shown = None
            self.show(self.every_instance)

    def _set_columns(self, width: int) -> bool:
        """The columns that fit, by priority; True when they changed."""
        table = self.query_one("#instances-table", DataTable)
        wanted = refit_table(table, COLUMNS, PRIORITY, width, self.shown_columns)
        if wanted is None:
            return False
        self.shown_columns = wanted
        return True

    def on_unmount(self) -> None:
        listeners = console_app(self).event_listeners
        if self._on_event in listeners:
            listeners.remove(self._on_event)

    def on_screen_resume(self) -> None:
        self.reload()

    def _on_event(self, event: Event) -> None:
        if event.topic in TOPICS:
            self.reload()

    def _network_read(self, net: NetworkSnapshot | None) -> None:
        """Joining or founding a network shows at once: the list is read again when this node's
        network changes (not on every read of the network)."""
        network = None if net is None or net.network is None else net.network.get("id")
        if network != self._network_id:
            self._network_id = network
            self.reload()

    # reading -----------------------------------------------------------------------------------
    async def _read_once(self) -> None:
        app = console_app(self)
        if app.link is None:
            self.say("not connected to a node yet", error=True)
            return
        net = app.network
        if net is not None and net.network is None and "state view network" not in net.errors:
            self.show([])
            self.say(NO_NETWORK)
            return
        try:
            got = await app.link.call(vm_routes.vm_list)
        except FormationError as exc:
            self.say(f"cannot read the instances: {reason(exc)}", error=True)
            return
        self.read_at = time.monotonic()
        self.show([app.presenter.instance(i) for i in got.instances])

    def say(self, text: str, error: bool = False) -> None:
        state = self.query_one("#instances-state", Static)
        state.set_class(error, "-error")
        state.update(text)

    def show(self, instances: list[Instance]) -> None:
        chosen = self.selected()
        self.every_instance = sorted(instances, key=lambda i: (i.name, i.id))
        self.instances = [i for i in self.every_instance if owned_by(i, self.owner_filter)]
        self.say(self._state_text(), self.notice.startswith("not done"))
        names = self._node_names()
        rows = [self._cells(i, names) for i in self.instances]
        table = self.query_one("#instances-table", DataTable)
        # the uptime column changes every second: _tick updates it
        steady = [tuple(c for i, c in zip(self.shown_columns, row, strict=True)
                        if i != UPTIME_COLUMN) for row in rows]
        if steady != self._shown:
            self._shown = steady
            table.clear()
            for instance, row in zip(self.instances, rows, strict=True):
                table.add_row(*row, key=instance.id)
            ids = [i.id for i in self.instances]
            if chosen is not None and chosen.id in ids:  # the cursor stays on its instance
                table.move_cursor(row=ids.index(chosen.id), animate=False)
        self._tick()
        self._show_selected()

    def _state_text(self) -> str:
        lines = [count_text(self.instances) if self.owner_filter is None or self.instances
                 else "No instance of this owner."]
        if self.owner_filter is not None:
            lines.append(f"{len(self.instances)} of {len(self.every_instance)} shown · "
                         + filter_text(self.owner_filter))
        if self.notice:
            lines.append(self.notice)
        return "\n".join(lines)

    def _node_names(self) -> dict[str, str]:
        net = console_app(self).network
        return {str(n["key"]): str(n["name"]) for n in (net.view("nodes") if net else [])
                if n.get("key") and n.get("name")}

    def _cells(self, instance: Instance, node_names: dict[str, str]) -> tuple[str, ...]:
        cells = instance_cells(instance, self._elapsed(), node_names)
        return tuple(cells[i] for i in self.shown_columns)

    def _elapsed(self) -> float:
        return time.monotonic() - self.read_at

    def _tick(self) -> None:
        """The uptime column, between reads (only its cells change)."""
        table = self.query_one("#instances-table", DataTable)
        if table.row_count != len(self.instances) or UPTIME_COLUMN not in self.shown_columns:
            return
        for instance in self.instances:
            cell = instance_cells(instance, self._elapsed())[UPTIME_COLUMN]
            if str(table.get_cell(instance.id, "uptime")) != cell:
                table.update_cell(instance.id, "uptime", cell)

    def on_data_table_row_highlighted(self, _: DataTable.RowHighlighted) -> None:
        self._show_selected()

    def _show_selected(self) -> None:
        self.query_one("#instance-selected", Static).update(selected_text(self.selected()))

    def selected(self) -> Instance | None:
        """The instance under the table's cursor (what the keys act on)."""
        if not self.is_mounted:
            return None
        cursor = self.query_one("#instances-table", DataTable).cursor_row
        return self.instances[cursor] if 0 <= cursor < len(self.instances) else None

    # actions -----------------------------------------------------------------------------------
    def acted(self, text: str, error: bool = False) -> None:
        self.notice = f"not done: {text}" if error else text
        self.say(self._state_text(), error)
        if not error:
            self.reload()

    def filter_to(self, owner: str | None) -> None:
        """Show only `owner`'s instances (None: all); the accounts screen's enter."""
        self.owner_filter = owner
        self._shown = None
        self.show(self.every_instance)

    def action_filter_owner(self) -> None:
        """All, then each account (with instances or in the accounts view), then node-owned
        work, then all again."""
        net = console_app(self).network
        accounts = [str(a["key"]) for a in (net.view("accounts") if net else []) if a.get("key")]
        self.filter_to(next_owner(self.owner_filter,
                                  owner_choices(self.every_instance, accounts)))

    def action_create(self) -> None:
        from formation.tui.screens.instance_create import InstanceCreateScreen

        self.app.push_screen(InstanceCreateScreen(), self._created)

    def _created(self, name: str | None) -> None:
        if name:
            self.acted(f"{name}: created; it is placed by rule and boots on its node")

    def action_details(self) -> None:
        chosen = self.selected()
        if chosen is None:
            self.acted("no instance selected: ↑↓ to choose one", error=True)
            return
        from formation.tui.screens.instance_detail import InstanceDetailScreen

        self.app.push_screen(InstanceDetailScreen(chosen))

    def on_data_table_row_selected(self, _: DataTable.RowSelected) -> None:
        self.action_details()
