"""Peers and mesh: every node any part of this node knows of, one row each, merged from the
state store (roles, mesh address), membership (alive/suspect/dead, last heard), discovery (how
it was found, its API endpoint) and the mesh (WireGuard endpoint, handshake age, bytes), with
each node's capabilities (edge, builder) as a column and, at any width, a line. Live:
the app reads the network again after each membership, discovery, mesh or state event."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from formation.tui.column_fit import refit_table
from formation.tui.console_app import console_app
from formation.tui.network import NetworkSnapshot
from formation.tui.network_rows import (
    COLUMNS,
    PRIORITY,
    NodeRow,
    capabilities_text,
    node_rows,
)
from formation.tui.screens.base import ConsoleScreen


def mesh_text(net: NetworkSnapshot) -> str:
    mesh = net.mesh
    if mesh is None:
        return f"mesh: cannot read ({net.errors.get('mesh', 'no answer')})"
    if not mesh.up:
        return f"mesh {mesh.interface}: down ({mesh.error or 'not started'})"
    return (f"mesh {mesh.interface} up · {mesh.backend} · {mesh.address or 'no address'} · "
            f"port {mesh.listen_port} · {len(mesh.peers)} peers")


def peers_state_text(net: NetworkSnapshot | None, n_rows: int,
                     capabilities: str | None = None) -> str:
    if net is None:
        return "reading the network…"
    mdns = net.discovered.mdns if net.discovered else net.errors.get("discovery", "no answer")
    lines = [f"{n_rows} nodes known · {mesh_text(net)} · mDNS {mdns}"]
    if capabilities:
        lines.append(f"capabilities: {capabilities}")
    lines += [f"cannot read {source}: {why}" for source, why in sorted(net.errors.items())
              if source in ("membership", "state view nodes")]
    lines.append("v: invite a host · a: pending joins · x: remove the selected node")
    return "\n".join(lines)


class PeersScreen(ConsoleScreen):
    TITLE_TEXT = "peers and mesh"
    rows: list[NodeRow] = []
    shown_columns: list[int] = []
    _shown: list[tuple[str, ...]] | None = None  # the rows on screen now

    def compose_body(self) -> ComposeResult:
        yield Static("reading the network…", id="peers-state")
        yield DataTable(id="peers-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        super().on_mount()
        self._set_columns(self.app.size.width)
        self.watch(self.app, "network", lambda _: self.show(), init=True)

    def on_resize(self, event: events.Resize) -> None:
        self._set_columns(event.size.width)
        self._shown = None
        self.show()

    def _set_columns(self, width: int) -> None:
        """The columns that fit, by priority: at 80 columns member state and round-trip time
        stay, the id and the byte counts go."""
        table = self.query_one("#peers-table", DataTable)
        wanted = refit_table(table, COLUMNS, PRIORITY, width, self.shown_columns)
        if wanted is not None:
            self.shown_columns = wanted

    def show(self) -> None:
        app = console_app(self)
        net: NetworkSnapshot | None = app.network
        status = app.node_status
        selected = self.selected_row()
        self.rows = node_rows(net, status) if net is not None else []
        rows = [tuple(r.cells()[i] for i in self.shown_columns) for r in self.rows]
        self.query_one("#peers-state", Static).update(
            peers_state_text(net, len(rows), capabilities_text(self.rows)))
        if rows == self._shown:
            return
        self._shown = rows
        table = self.query_one("#peers-table", DataTable)
        table.clear()
        for row in rows:
            table.add_row(*row)
        # "seen" changes every read: the cursor stays on the node the operator chose (what x
        # removes), not on the first row
        ids = [r.node_id for r in self.rows]
        if selected is not None and selected.node_id in ids:
            table.move_cursor(row=ids.index(selected.node_id), animate=False)

    def selected_row(self) -> NodeRow | None:
        """The node under the table's cursor (what x removes)."""
        cursor = self.query_one("#peers-table", DataTable).cursor_row
        return self.rows[cursor] if 0 <= cursor < len(self.rows) else None
